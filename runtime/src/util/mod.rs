//! Small internal building blocks.
pub(crate) mod gen_slab;
pub(crate) mod recycle;
