//! Importing parsed school data into the database (see import/ modules).
