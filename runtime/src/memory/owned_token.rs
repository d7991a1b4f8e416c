//! [`OwnedToken`]: a token that frees its slot when dropped, and [`SharedManager`], the
//! managers it can hold.

use core::cell::RefCell;
use core::fmt;
use core::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use super::{
    ConcurrentHandle, ConcurrentMemoryManager, MemoryError, MemoryManager, Message, MessageToken,
    StoreError,
};

/// A manager reachable through a shared reference, so that an [`OwnedToken`] can free its
/// slot from `drop`.
///
/// Implemented for `RefCell<M>` of any [`MemoryManager`] (the single-threaded way to share
/// one between tasks, usually as `Rc<RefCell<M>>`), for [`ConcurrentMemoryManager`] and its
/// handles, and through `&T`, `Rc<T>` and `Arc<T>`.
pub trait SharedManager<P> {
    /// Stores `message`, as [`MemoryManager::store`].
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::try_store`] (the message comes back on failure); for a `RefCell`,
    /// [`MemoryError::AlreadyBorrowed`] while the cell is borrowed.
    fn store_shared(&self, message: Message<P>) -> Result<MessageToken, StoreError<P>>;

    /// Frees the slot of `token`, as [`MemoryManager::free`].
    ///
    /// # Errors
    ///
    /// As [`MemoryManager::free`]; for a `RefCell`, [`MemoryError::BorrowActive`] while the
    /// cell is borrowed (a guard from the manager is alive).
    fn free_shared(&self, token: MessageToken) -> Result<(), MemoryError>;
}

impl<P, M: MemoryManager<P>> SharedManager<P> for RefCell<M> {
    fn store_shared(&self, message: Message<P>) -> Result<MessageToken, StoreError<P>> {
        match self.try_borrow_mut() {
            Ok(mut manager) => manager.try_store(message),
            Err(_) => Err(StoreError {
                error: MemoryError::AlreadyBorrowed,
                message,
            }),
        }
    }

    fn free_shared(&self, token: MessageToken) -> Result<(), MemoryError> {
        let mut manager = self
            .try_borrow_mut()
            .map_err(|_| MemoryError::BorrowActive)?;
        manager.free(token)
    }
}

impl<P> SharedManager<P> for ConcurrentMemoryManager<P> {
    fn store_shared(&self, message: Message<P>) -> Result<MessageToken, StoreError<P>> {
        self.try_store(message)
    }

    fn free_shared(&self, token: MessageToken) -> Result<(), MemoryError> {
        self.free(token)
    }
}

impl<P> SharedManager<P> for ConcurrentHandle<'_, P> {
    fn store_shared(&self, message: Message<P>) -> Result<MessageToken, StoreError<P>> {
        self.manager().try_store(message)
    }

    fn free_shared(&self, token: MessageToken) -> Result<(), MemoryError> {
        self.manager().free(token)
    }
}

macro_rules! forward_shared_manager {
    ($($pointer:ty),*) => {$(
        impl<P, T: SharedManager<P> + ?Sized> SharedManager<P> for $pointer {
            fn store_shared(&self, message: Message<P>) -> Result<MessageToken, StoreError<P>> {
                (**self).store_shared(message)
            }

            fn free_shared(&self, token: MessageToken) -> Result<(), MemoryError> {
                (**self).free_shared(token)
            }
        }
    )*};
}
forward_shared_manager!(&T, Rc<T>, Arc<T>);

/// A token that owns its message: dropping it frees the slot.
///
/// Use it where a task might be dropped half-way (cancelled, timed out, its runtime shut
/// down): the slots of the messages it held come back instead of leaking. Reach the message
/// through the manager with [`token`](Self::token); give up ownership with
/// [`into_token`](Self::into_token).
///
/// Dropping cannot report an error: if the slot cannot be freed at that moment (a guard to
/// it is alive, or for a `RefCell` the cell is borrowed) it stays allocated. Drop guards
/// before the owned token, or call [`free`](Self::free) to see the error.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// use iomgr::memory::{HeapMemoryManager, MemoryManager, Message, OwnedToken};
///
/// let manager = Rc::new(RefCell::new(HeapMemoryManager::with_fixed_capacity(4)));
/// {
///     let owned = OwnedToken::store(manager.clone(), Message::new(1, vec![0u8; 512]))?;
///     assert_eq!(manager.borrow().read(owned.token())?.payload.len(), 512);
///     assert_eq!(manager.borrow().available(), 3);
/// } // dropped: the slot is freed
/// assert_eq!(manager.borrow().available(), 4);
/// # Ok::<(), iomgr::memory::MemoryError>(())
/// ```
pub struct OwnedToken<P, M: SharedManager<P>> {
    manager: M,
    token: MessageToken,
    /// Whether dropping frees the slot: `false` once freed or given up.
    owns_slot: bool,
    payload: PhantomData<fn() -> P>,
}

impl<P, M: SharedManager<P>> OwnedToken<P, M> {
    /// Stores `message` in `manager` and owns the token.
    ///
    /// # Errors
    ///
    /// As [`SharedManager::store_shared`].
    pub fn store(manager: M, message: Message<P>) -> Result<Self, StoreError<P>> {
        let token = manager.store_shared(message)?;
        Ok(Self::from_token(manager, token))
    }

    /// Takes ownership of `token`, a live token of `manager`.
    pub fn from_token(manager: M, token: MessageToken) -> Self {
        OwnedToken {
            manager,
            token,
            owns_slot: true,
            payload: PhantomData,
        }
    }

    /// The token, to read or write the message through the manager.
    pub fn token(&self) -> MessageToken {
        self.token
    }

    /// The manager holding the message.
    pub fn manager(&self) -> &M {
        &self.manager
    }

    /// Gives up ownership: the slot stays allocated and the caller must free it.
    pub fn into_token(mut self) -> MessageToken {
        self.owns_slot = false;
        self.token
    }

    /// Frees the slot now, reporting failure.
    ///
    /// # Errors
    ///
    /// As [`SharedManager::free_shared`]; on error the owned token is handed back, still
    /// owning the slot.
    pub fn free(mut self) -> Result<(), (MemoryError, Self)> {
        match self.manager.free_shared(self.token) {
            Ok(()) => {
                self.owns_slot = false;
                Ok(())
            }
            Err(error) => Err((error, self)),
        }
    }
}

impl<P, M: SharedManager<P>> Drop for OwnedToken<P, M> {
    fn drop(&mut self) {
        if self.owns_slot {
            // Nothing to do with an error here: see the type's docs.
            let _ = self.manager.free_shared(self.token);
        }
    }
}

impl<P, M: SharedManager<P>> fmt::Debug for OwnedToken<P, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedToken")
            .field("token", &self.token)
            .field("owns_slot", &self.owns_slot)
            .finish()
    }
}
