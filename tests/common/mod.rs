//! The integration suites' shared set-up is the test kit (`dmk_control_plane::kit`, in
//! tests/control-plane), which the benchmark and `make run` use too.
#![allow(unused_imports)]

pub use dmk_control_plane::kit::*;
