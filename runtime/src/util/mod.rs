//! Small internal building blocks.
pub(crate) mod gen_slab;
