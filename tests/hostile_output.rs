//! Hostile and faulty input (issue 12): what a run may write, replace and leave behind.
