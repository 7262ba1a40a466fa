//! Hostile and faulty input (issue 12): the heavy step's memory, spill files and reads.
