//! Sentinel credentials through every pipeline: none may leak.
