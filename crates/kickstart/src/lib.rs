//! Anaconda kickstart, F40 syntax.
