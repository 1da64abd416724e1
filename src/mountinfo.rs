//! mountinfo
