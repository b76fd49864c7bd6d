//! Roster import through the real database: every fixture, re-imports, leavers, malformed files.
