//! Tests of the rollup circuit.
