//! Hostile and faulty input (issue 12): exemption windows and notices in time that grows with their sum.
