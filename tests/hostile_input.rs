//! Hostile and faulty input (issue 12): what the inputs hold, how they are found and read.
