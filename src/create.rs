//! create
