//! Collecting input problems: stop at the first (`run`) or gather them all (`validate`); and
//! noting each file a loader opened, with its stamp, for the manifest's provenance (SPEC §8).
//!
//! Every loader takes a [`Problems`] and hands each fatal defect to it. In
//! [`Problems::first_fatal`] mode the defect comes straight back as `Err`, so `?` stops the
//! load with exactly the error a run has always reported; in [`Problems::collect_all`] mode it
//! is kept, the offending row or file is skipped, and loading goes on to find the rest.

use crate::error::InputError;
use crate::inputs::stamp::InputFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    FirstFatal,
    CollectAll,
}

#[derive(Debug)]
pub struct Problems {
    mode: Mode,
    found: Vec<InputError>,
    /// Files the loaders opened, in the order they opened them.
    read: Vec<InputFile>,
}

impl Problems {
    /// The run's mode: the first problem is returned as the error.
    pub fn first_fatal() -> Problems {
        Problems {
            mode: Mode::FirstFatal,
            found: Vec::new(),
            read: Vec::new(),
        }
    }

    /// The validator's mode: every problem is kept and loading goes on.
    pub fn collect_all() -> Problems {
        Problems {
            mode: Mode::CollectAll,
            found: Vec::new(),
            read: Vec::new(),
        }
    }

    /// Hands over one problem: `Err` in first-fatal mode, kept (and `Ok`) otherwise.
    pub fn report(&mut self, problem: InputError) -> Result<(), InputError> {
        match self.mode {
            Mode::FirstFatal => Err(problem),
            Mode::CollectAll => {
                self.found.push(problem);
                Ok(())
            }
        }
    }

    /// A checked value: `Some` when it is good, `None` when its problem was kept.
    pub fn check<T>(&mut self, result: Result<T, InputError>) -> Result<Option<T>, InputError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(problem) => self.report(problem).map(|()| None),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub fn len(&self) -> usize {
        self.found.len()
    }

    pub fn into_vec(self) -> Vec<InputError> {
        self.found
    }

    /// Notes a file a loader is about to read.
    pub fn read_file(&mut self, file: InputFile) {
        self.read.push(file);
    }

    /// The files noted so far, handed over once.
    pub fn take_read(&mut self) -> Vec<InputFile> {
        std::mem::take(&mut self.read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;

    fn problem(n: u32) -> InputError {
        InputError::new(Location::file(format!("f{n}.csv")), "is wrong")
    }

    #[test]
    fn first_fatal_returns_the_first_problem_as_the_error() {
        let mut problems = Problems::first_fatal();
        let err = problems.check::<()>(Err(problem(1))).unwrap_err();
        assert_eq!(err.to_string(), "`f1.csv`: is wrong");
        assert!(problems.is_empty());
    }

    #[test]
    fn collect_all_keeps_every_problem_in_order() {
        let mut problems = Problems::collect_all();
        assert_eq!(problems.check::<u8>(Err(problem(1))).unwrap(), None);
        assert_eq!(problems.check(Ok(7)).unwrap(), Some(7));
        problems.report(problem(2)).unwrap();
        let found: Vec<String> = problems.into_vec().iter().map(|p| p.to_string()).collect();
        assert_eq!(found, ["`f1.csv`: is wrong", "`f2.csv`: is wrong"]);
    }
}
