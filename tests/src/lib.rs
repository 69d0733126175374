//! 数字保险箱 test harness.
