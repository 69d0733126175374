//! 数字保险箱 department node.
