//! Alignment as a const parameter: `Align<N>` names a zero-sized type aligned to `N`.
//!
//! A [`Task`](super::Task) stores its future as bytes; `[<Align<N> as Alignment>::Unit; 0]`
//! beside them gives the storage the future's alignment without naming the future's type.

/// `N` as a type; implements [`Alignment`] for every power of two from 1 to 4096.
#[derive(Debug)]
pub struct Align<const N: usize>;

/// Maps [`Align<N>`] to a zero-sized type whose alignment is `N`.
pub trait Alignment {
    /// Zero-sized, aligned to `N`.
    type Unit;
}

macro_rules! alignments {
    ($($n:literal => $unit:ident),* $(,)?) => {$(
        #[doc = concat!("Zero-sized, aligned to ", stringify!($n), " bytes.")]
        #[derive(Debug, Clone, Copy)]
        #[repr(align($n))]
        pub struct $unit;
        impl Alignment for Align<$n> {
            type Unit = $unit;
        }
    )*};
}

alignments! {
    1 => Align1, 2 => Align2, 4 => Align4, 8 => Align8, 16 => Align16, 32 => Align32,
    64 => Align64, 128 => Align128, 256 => Align256, 512 => Align512, 1024 => Align1024,
    2048 => Align2048, 4096 => Align4096,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, size_of};

    #[test]
    fn units_are_zero_sized_and_aligned() {
        fn check<const N: usize>()
        where
            Align<N>: Alignment,
        {
            assert_eq!(size_of::<<Align<N> as Alignment>::Unit>(), 0);
            assert_eq!(align_of::<<Align<N> as Alignment>::Unit>(), N);
        }
        check::<1>();
        check::<8>();
        check::<16>();
        check::<4096>();
    }
}
