//! The quotient's arithmetic as a program every backend runs.
//!
//! halo2 compiles a circuit's gate polynomials once into a list of steps over columns,
//! challenges and earlier results (its `GraphEvaluator`), and folds them into the running
//! quotient with Horner's rule in `y`, followed by the permutation argument's and the
//! lookups' terms. The prover's engine (`proofmill_prover::engine`) writes all of one coset
//! part's terms as one [`GateProgram`], and a backend evaluates it at every row of the part:
//!
//! * the CPU backend runs one step over a block of [`BLOCK`] rows at a time, so the
//!   interpretation (which operand, which rotation) is paid once per block instead of once
//!   per row, and operands are read as contiguous slices;
//! * a GPU runs `kernels/gates.cu`, one kernel that interprets the program's device words
//!   ([`GateProgram::device_words`]), a thread per row, intermediate results in a scratch
//!   buffer laid out slot-major so that neighbouring threads touch neighbouring words.
//!
//! A program is checked and compiled once: every step may read only results of earlier steps
//! (each written once), halo2's `Store` steps (a copy of a column or a scalar into an
//! intermediate) become direct reads, and the intermediates are packed into as few slots as
//! their lifetimes allow. Field arithmetic is exact, so a program computes at row `i` exactly
//! what halo2's code computes there (checked inside real proofs by the prover's tests).

use std::collections::HashMap;

use ff::Field;
use halo2curves::bn256::Fr;
use rayon::prelude::*;

use crate::AccelError;

/// Rows one step of the CPU evaluation covers at a time.
pub const BLOCK: usize = 64;

/// Largest column index a device word can name (18 bits).
const MAX_COLUMNS: u32 = 1 << 18;
/// Largest rotation index a device word can name (12 bits).
const MAX_ROTATIONS: u32 = 1 << 12;
/// Largest scalar or slot index a device word can name (30 bits).
const MAX_INDEX: u32 = 1 << 30;

/// Where an operand of a step comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// `scalars[i]` of the call: a constant, a challenge, beta, gamma, theta or y, as the
    /// caller lays them out.
    Scalar(u32),
    /// The result of the earlier step whose target this is.
    Intermediate(u32),
    /// `columns[column][(row + rotations[rotation]) mod n]`.
    Column {
        /// Index into the call's columns.
        column: u32,
        /// Index into the program's rotations.
        rotation: u32,
    },
    /// `values[row]` as it was before the evaluation (the running quotient).
    Previous,
}

/// One operation over operands of type `O` (the compiled form uses its own operands).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op<O = Operand> {
    /// `a + b`
    Add(O, O),
    /// `a - b`
    Sub(O, O),
    /// `a * b`
    Mul(O, O),
    /// `a^2`
    Square(O),
    /// `2a`
    Double(O),
    /// `-a`
    Negate(O),
    /// Horner's rule: `v = start; for p in parts { v = v * factor + p }`.
    Horner {
        /// The initial value.
        start: O,
        /// The terms folded in, in order.
        parts: Vec<O>,
        /// The factor each fold multiplies by.
        factor: O,
    },
    /// `a` (a copy).
    Store(O),
}

/// A step: an operation and the intermediate it defines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The intermediate this step writes; later steps read it as
    /// [`Operand::Intermediate`].
    pub target: u32,
    /// What it computes.
    pub op: Op,
}

/// An operand after compilation: intermediates are slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Scalar(u32),
    Slot(u32),
    Column { column: u32, rotation: u32 },
    Previous,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct CStep {
    slot: u32,
    /// Never a `Store`: compilation folds copies into their readers.
    op: Op<Src>,
}

/// A checked, compiled gate program: what [`crate::Backend::evaluate_gates`] runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateProgram {
    steps: Vec<CStep>,
    rotations: Vec<i32>,
    result: Option<Src>,
    slots: u32,
    scalars: u32,
    columns: u32,
}

/// What one evaluation reads besides the program: the scalars and the columns (each the
/// length of the values, one coset part).
#[derive(Clone, Copy, Debug)]
pub struct GateInputs<'a> {
    /// Values of [`Operand::Scalar`].
    pub scalars: &'a [Fr],
    /// Values of [`Operand::Column`].
    pub columns: &'a [&'a [Fr]],
}

fn invalid(step: usize, reason: impl Into<String>) -> AccelError {
    AccelError::InvalidGateProgram {
        step,
        reason: reason.into(),
    }
}

impl<O: Copy> Op<O> {
    /// Every operand, in the order the device words list them (binary: a, b; unary: a;
    /// Horner: start, factor, parts).
    fn operands(&self) -> Vec<O> {
        match self {
            Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) => vec![*a, *b],
            Op::Square(a) | Op::Double(a) | Op::Negate(a) | Op::Store(a) => vec![*a],
            Op::Horner {
                start,
                parts,
                factor,
            } => {
                let mut all = vec![*start, *factor];
                all.extend(parts.iter().copied());
                all
            }
        }
    }

    /// The same operation over `f` of each operand.
    fn map<T>(&self, mut f: impl FnMut(O) -> T) -> Op<T> {
        match self {
            Op::Add(a, b) => Op::Add(f(*a), f(*b)),
            Op::Sub(a, b) => Op::Sub(f(*a), f(*b)),
            Op::Mul(a, b) => Op::Mul(f(*a), f(*b)),
            Op::Square(a) => Op::Square(f(*a)),
            Op::Double(a) => Op::Double(f(*a)),
            Op::Negate(a) => Op::Negate(f(*a)),
            Op::Store(a) => Op::Store(f(*a)),
            Op::Horner {
                start,
                parts,
                factor,
            } => Op::Horner {
                start: f(*start),
                parts: parts.iter().map(|p| f(*p)).collect(),
                factor: f(*factor),
            },
        }
    }
}

/// A value of the intermediate `t` before slots are assigned: `Slot(step index)`.
fn resolve(
    operand: Operand,
    aliases: &HashMap<u32, Src>,
    defined: &HashMap<u32, usize>,
    step: usize,
) -> Result<Src, AccelError> {
    Ok(match operand {
        Operand::Scalar(i) => Src::Scalar(i),
        Operand::Column { column, rotation } => Src::Column { column, rotation },
        Operand::Previous => Src::Previous,
        Operand::Intermediate(t) => {
            if let Some(alias) = aliases.get(&t) {
                *alias
            } else if let Some(&s) = defined.get(&t) {
                Src::Slot(s as u32)
            } else {
                return Err(invalid(
                    step,
                    format!("reads intermediate {t}, which no earlier step writes"),
                ));
            }
        }
    })
}

impl GateProgram {
    /// Checks and compiles `steps` (run in order; the result is the last step's target, or
    /// zero for no steps) over the rotations `rotations`.
    pub fn new(steps: &[Step], rotations: &[i32]) -> Result<Self, AccelError> {
        if rotations.len() as u64 > MAX_ROTATIONS as u64 {
            return Err(invalid(
                0,
                format!(
                    "{} rotations; at most {MAX_ROTATIONS} are supported",
                    rotations.len()
                ),
            ));
        }
        // Pass 1: check, resolve Stores into aliases, number the remaining steps.
        let mut aliases: HashMap<u32, Src> = HashMap::new();
        let mut defined: HashMap<u32, usize> = HashMap::new();
        let mut compiled: Vec<Op<Src>> = Vec::new();
        let (mut scalars, mut columns) = (0u32, 0u32);
        let mut result = None;
        for (i, step) in steps.iter().enumerate() {
            if aliases.contains_key(&step.target) || defined.contains_key(&step.target) {
                return Err(invalid(
                    i,
                    format!("writes intermediate {} a second time", step.target),
                ));
            }
            for operand in step.op.operands() {
                match operand {
                    Operand::Scalar(s) => {
                        if s >= MAX_INDEX {
                            return Err(invalid(i, format!("scalar index {s} is too large")));
                        }
                        scalars = scalars.max(s + 1);
                    }
                    Operand::Column { column, rotation } => {
                        if column >= MAX_COLUMNS {
                            return Err(invalid(i, format!("column index {column} is too large")));
                        }
                        if rotation as usize >= rotations.len() {
                            return Err(invalid(
                                i,
                                format!(
                                    "rotation index {rotation}, but the program has {} rotations",
                                    rotations.len()
                                ),
                            ));
                        }
                        columns = columns.max(column + 1);
                    }
                    Operand::Intermediate(_) | Operand::Previous => {}
                }
            }
            let r = |o: Operand| resolve(o, &aliases, &defined, i);
            if let Op::Store(a) = &step.op {
                let a = r(*a)?;
                aliases.insert(step.target, a);
                result = Some(a);
                continue;
            }
            let mut error = None;
            let op = step.op.map(|o| {
                r(o).unwrap_or_else(|e| {
                    error.get_or_insert(e);
                    Src::Previous
                })
            });
            if let Some(e) = error {
                return Err(e);
            }
            defined.insert(step.target, compiled.len());
            result = Some(Src::Slot(compiled.len() as u32));
            compiled.push(op);
        }
        // Pass 2: slots by lifetime. `last[s]` is the last step reading step s's value (the
        // result counts as read after every step).
        let end = compiled.len();
        let mut last = vec![None::<usize>; compiled.len()];
        for (i, op) in compiled.iter().enumerate() {
            for src in op.operands() {
                if let Src::Slot(s) = src {
                    last[s as usize] = Some(i);
                }
            }
        }
        if let Some(Src::Slot(s)) = result {
            last[s as usize] = Some(end);
        }
        let mut free: Vec<u32> = Vec::new();
        let mut slot_of = vec![0u32; compiled.len()];
        let mut ends_at: Vec<Vec<usize>> = vec![Vec::new(); end + 1];
        for (s, l) in last.iter().enumerate() {
            if let Some(l) = l {
                ends_at[*l].push(s);
            }
        }
        let mut slots = 0u32;
        let mut out = Vec::with_capacity(compiled.len());
        for (i, op) in compiled.iter().enumerate() {
            let op = op.map(|src| match src {
                Src::Slot(s) => Src::Slot(slot_of[s as usize]),
                other => other,
            });
            // Operands whose last reader is this step free their slots before the target
            // takes one: every backend reads all operands before writing the result.
            for &s in &ends_at[i] {
                free.push(slot_of[s]);
            }
            let slot = free.pop().unwrap_or_else(|| {
                slots += 1;
                slots - 1
            });
            if last[i].is_none() {
                // Never read: its slot is free again at once.
                free.push(slot);
            }
            slot_of[i] = slot;
            out.push(CStep { slot, op });
        }
        if slots >= MAX_INDEX {
            return Err(invalid(end, "too many live intermediates"));
        }
        let result = result.map(|src| match src {
            Src::Slot(s) => Src::Slot(slot_of[s as usize]),
            other => other,
        });
        Ok(Self {
            steps: out,
            rotations: rotations.to_vec(),
            result,
            slots,
            scalars,
            columns,
        })
    }

    /// Scalars a call must supply (one past the largest index read).
    pub fn scalars(&self) -> usize {
        self.scalars as usize
    }

    /// Columns a call must supply (one past the largest index read).
    pub fn columns(&self) -> usize {
        self.columns as usize
    }

    /// Intermediate slots a row needs at once (after the packing).
    pub fn slots(&self) -> usize {
        self.slots as usize
    }

    /// Operations per row, after the copies were folded away.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True when the program computes a constant or a plain read.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The rotations the columns are read at.
    pub fn rotations(&self) -> &[i32] {
        &self.rotations
    }

    /// Whether the program reads the previous values.
    pub fn reads_previous(&self) -> bool {
        self.result == Some(Src::Previous)
            || self
                .steps
                .iter()
                .any(|s| s.op.operands().contains(&Src::Previous))
    }

    /// The program as `kernels/gates.cu` reads it: a header (step count, whether there is a
    /// result, the result operand), then per step `opcode | parts << 8` (1 add, 2 sub, 3 mul,
    /// 4 square, 5 double, 6 negate, 7 Horner, 8 copy), the target slot and the operands
    /// (binary: a, b; unary: a; Horner: start, factor, parts). An operand word is
    /// `kind << 30 | payload`: kind 0 a scalar, 1 a slot, 2 a column (`column << 12 |
    /// rotation`), 3 the previous value.
    pub fn device_words(&self) -> Vec<u32> {
        let word = |src: Src| match src {
            Src::Scalar(i) => i,
            Src::Slot(s) => 1 << 30 | s,
            Src::Column { column, rotation } => 2 << 30 | column << 12 | rotation,
            Src::Previous => 3 << 30,
        };
        let mut w = vec![
            self.steps.len() as u32,
            u32::from(self.result.is_some()),
            self.result.map(word).unwrap_or(0),
        ];
        for step in &self.steps {
            let (code, parts) = match &step.op {
                Op::Add(..) => (1, 0),
                Op::Sub(..) => (2, 0),
                Op::Mul(..) => (3, 0),
                Op::Square(_) => (4, 0),
                Op::Double(_) => (5, 0),
                Op::Negate(_) => (6, 0),
                Op::Horner { parts, .. } => (7, parts.len() as u32),
                Op::Store(_) => (8, 0),
            };
            let operands = step.op.operands();
            w.push(code | parts << 8);
            w.push(step.slot);
            w.extend(operands.into_iter().map(word));
        }
        w
    }

    /// Checks a call's inputs against the program and the values.
    pub(crate) fn check(&self, inputs: &GateInputs<'_>, rows: usize) -> Result<(), AccelError> {
        let mismatch = |what: String| Err(AccelError::GateInputMismatch { what });
        if rows == 0 || rows > u32::MAX as usize {
            return mismatch(format!("{rows} rows; 1 to 2^32 - 1 are supported"));
        }
        if inputs.scalars.len() < self.scalars() {
            return mismatch(format!(
                "{} scalars given, the program reads {}",
                inputs.scalars.len(),
                self.scalars()
            ));
        }
        if inputs.columns.len() < self.columns() {
            return mismatch(format!(
                "{} columns given, the program reads {}",
                inputs.columns.len(),
                self.columns()
            ));
        }
        if let Some((i, c)) = inputs.columns[..self.columns()]
            .iter()
            .enumerate()
            .find(|(_, c)| c.len() != rows)
        {
            return mismatch(format!(
                "column {i} has {} rows, the values {rows}",
                c.len()
            ));
        }
        Ok(())
    }

    /// The CPU evaluation: `values[i] = program(row i)` for every row, blocks of [`BLOCK`]
    /// rows in parallel. The inputs were checked.
    pub(crate) fn evaluate_cpu(&self, inputs: &GateInputs<'_>, values: &mut [Fr]) {
        let n = values.len();
        let slots = self.slots();
        let previous = self.reads_previous();
        values
            .par_chunks_mut(BLOCK)
            .enumerate()
            .with_min_len(4)
            .for_each_init(
                || Scratch {
                    slots: vec![Fr::ZERO; slots * BLOCK],
                    out: [Fr::ZERO; BLOCK],
                    a: [Fr::ZERO; BLOCK],
                    b: [Fr::ZERO; BLOCK],
                    prev: [Fr::ZERO; BLOCK],
                },
                |s, (block, values)| {
                    let start = block * BLOCK;
                    let len = values.len();
                    if previous {
                        s.prev[..len].copy_from_slice(values);
                    }
                    for step in &self.steps {
                        self.run_step(step, inputs, start, len, n, s);
                        let slot = step.slot as usize * BLOCK;
                        s.slots[slot..slot + len].copy_from_slice(&s.out[..len]);
                    }
                    match self.result {
                        None => values.fill(Fr::ZERO),
                        Some(src) => {
                            let Scratch { slots, a, prev, .. } = s;
                            match self.fetch(src, inputs, start, len, n, slots, prev, a) {
                                Val::Scalar(v) => values.fill(v),
                                Val::Rows(r) => values.copy_from_slice(r),
                            }
                        }
                    }
                },
            );
    }

    /// Reads `src` for rows `start..start + len`; a column read that wraps around is
    /// gathered into `gather`.
    #[allow(clippy::too_many_arguments)]
    fn fetch<'a>(
        &self,
        src: Src,
        inputs: &GateInputs<'a>,
        start: usize,
        len: usize,
        n: usize,
        slots: &'a [Fr],
        prev: &'a [Fr; BLOCK],
        gather: &'a mut [Fr; BLOCK],
    ) -> Val<'a> {
        match src {
            Src::Scalar(i) => Val::Scalar(inputs.scalars[i as usize]),
            Src::Slot(s) => {
                let at = s as usize * BLOCK;
                Val::Rows(&slots[at..at + len])
            }
            Src::Previous => Val::Rows(&prev[..len]),
            Src::Column { column, rotation } => {
                let col = inputs.columns[column as usize];
                let rot = self.rotations[rotation as usize] as i64;
                let at = (start as i64 + rot).rem_euclid(n as i64) as usize;
                if at + len <= n {
                    Val::Rows(&col[at..at + len])
                } else {
                    for (i, g) in gather[..len].iter_mut().enumerate() {
                        *g = col[(at + i) % n];
                    }
                    Val::Rows(&gather[..len])
                }
            }
        }
    }

    fn run_step(
        &self,
        step: &CStep,
        inputs: &GateInputs<'_>,
        start: usize,
        len: usize,
        n: usize,
        s: &mut Scratch,
    ) {
        // Each operand is read through its own gather buffer (`a` or `b`), so two reads can
        // be alive at once; the step writes only `out`.
        let Scratch {
            slots,
            out,
            a,
            b,
            prev,
        } = s;
        let out = &mut out[..len];
        let slots = &slots[..];
        // A macro, not a closure: each read borrows its gather buffer for itself.
        macro_rules! fetch {
            ($src:expr, $gather:expr) => {
                self.fetch($src, inputs, start, len, n, slots, prev, $gather)
            };
        }
        match &step.op {
            Op::Add(x, y) => binary(out, fetch!(*x, a), fetch!(*y, b), |p, q| p + q),
            Op::Sub(x, y) => binary(out, fetch!(*x, a), fetch!(*y, b), |p, q| p - q),
            Op::Mul(x, y) => binary(out, fetch!(*x, a), fetch!(*y, b), |p, q| p * q),
            Op::Square(x) => unary(out, fetch!(*x, a), |p| p.square()),
            Op::Double(x) => unary(out, fetch!(*x, a), |p| p.double()),
            Op::Negate(x) => unary(out, fetch!(*x, a), |p| -p),
            Op::Store(x) => unary(out, fetch!(*x, a), |p| *p),
            Op::Horner {
                start: first,
                parts,
                factor,
            } => {
                unary(out, fetch!(*first, a), |p| *p);
                let factor = fetch!(*factor, b);
                for part in parts {
                    binary_in_place(out, &factor, fetch!(*part, a), |o, f, p| o * f + p);
                }
            }
        }
    }
}

/// Per-task buffers of the CPU evaluation.
struct Scratch {
    slots: Vec<Fr>,
    out: [Fr; BLOCK],
    a: [Fr; BLOCK],
    b: [Fr; BLOCK],
    prev: [Fr; BLOCK],
}

/// An operand's values over a block.
enum Val<'a> {
    Scalar(Fr),
    Rows(&'a [Fr]),
}

fn unary(out: &mut [Fr], x: Val<'_>, f: impl Fn(&Fr) -> Fr) {
    match x {
        Val::Scalar(x) => out.fill(f(&x)),
        Val::Rows(x) => {
            for (o, x) in out.iter_mut().zip(x) {
                *o = f(x);
            }
        }
    }
}

fn binary(out: &mut [Fr], x: Val<'_>, y: Val<'_>, f: impl Fn(&Fr, &Fr) -> Fr) {
    match (x, y) {
        (Val::Scalar(x), Val::Scalar(y)) => out.fill(f(&x, &y)),
        (Val::Scalar(x), Val::Rows(y)) => {
            for (o, y) in out.iter_mut().zip(y) {
                *o = f(&x, y);
            }
        }
        (Val::Rows(x), Val::Scalar(y)) => {
            for (o, x) in out.iter_mut().zip(x) {
                *o = f(x, &y);
            }
        }
        (Val::Rows(x), Val::Rows(y)) => {
            for ((o, x), y) in out.iter_mut().zip(x).zip(y) {
                *o = f(x, y);
            }
        }
    }
}

/// `out[i] = f(out[i], x[i], y[i])`, scalars broadcast.
fn binary_in_place(out: &mut [Fr], x: &Val<'_>, y: Val<'_>, f: impl Fn(Fr, &Fr, &Fr) -> Fr) {
    match (x, y) {
        (Val::Scalar(x), Val::Scalar(y)) => {
            for o in out.iter_mut() {
                *o = f(*o, x, &y);
            }
        }
        (Val::Scalar(x), Val::Rows(y)) => {
            for (o, y) in out.iter_mut().zip(y) {
                *o = f(*o, x, y);
            }
        }
        (Val::Rows(x), Val::Scalar(y)) => {
            for (o, x) in out.iter_mut().zip(*x) {
                *o = f(*o, x, &y);
            }
        }
        (Val::Rows(x), Val::Rows(y)) => {
            for ((o, x), y) in out.iter_mut().zip(*x).zip(y) {
                *o = f(*o, x, y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{random_scalars, reference_gates};

    fn col(column: u32, rotation: u32) -> Operand {
        Operand::Column { column, rotation }
    }

    fn step(target: u32, op: Op) -> Step {
        Step { target, op }
    }

    #[test]
    fn programs_that_read_what_was_never_written_are_refused() {
        let refused = |steps: &[Step], rotations: &[i32], what: &str| match GateProgram::new(
            steps, rotations,
        ) {
            Err(AccelError::InvalidGateProgram { reason, .. }) => {
                assert!(reason.contains(what), "{reason}")
            }
            other => panic!("expected a refusal naming {what:?}, got {other:?}"),
        };
        refused(
            &[step(
                0,
                Op::Add(Operand::Intermediate(1), Operand::Scalar(0)),
            )],
            &[0],
            "no earlier step writes",
        );
        refused(
            &[
                step(0, Op::Store(col(0, 0))),
                step(0, Op::Square(Operand::Intermediate(0))),
            ],
            &[0],
            "a second time",
        );
        refused(&[step(0, Op::Store(col(0, 1)))], &[0], "rotation index 1");
        refused(&[step(0, Op::Store(col(1 << 20, 0)))], &[0], "too large");
    }

    #[test]
    fn inputs_that_do_not_fit_the_program_are_refused() {
        let program =
            GateProgram::new(&[step(0, Op::Mul(col(1, 0), Operand::Scalar(2)))], &[0]).unwrap();
        assert_eq!((program.columns(), program.scalars()), (2, 3));
        let a = vec![Fr::ONE; 8];
        let short = vec![Fr::ONE; 7];
        let scalars = [Fr::ONE; 3];
        type Case<'a> = (&'a [&'a [Fr]], &'a [Fr], usize, &'a str);
        let cases: [Case<'_>; 4] = [
            (&[&a, &a], &scalars[..2], 8, "2 scalars given"),
            (&[&a], &scalars, 8, "1 columns given"),
            (&[&a, &short], &scalars, 8, "column 1 has 7 rows"),
            (&[&a, &a], &scalars, 0, "0 rows"),
        ];
        for (columns, scalars, rows, what) in cases {
            let inputs = GateInputs { scalars, columns };
            match program.check(&inputs, rows) {
                Err(AccelError::GateInputMismatch { what: w }) => assert!(w.contains(what), "{w}"),
                other => panic!("expected a mismatch naming {what:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn copies_become_reads_and_slots_are_reused() {
        // A chain x -> x^2 -> (x^2)^2 ... of 50 squares over a stored column, then the
        // Horner fold: the stores disappear and two slots carry the whole chain.
        let mut steps = vec![step(100, Op::Store(col(0, 0)))];
        for i in 0..50 {
            steps.push(step(
                i,
                Op::Square(Operand::Intermediate(if i == 0 { 100 } else { i - 1 })),
            ));
        }
        steps.push(step(
            200,
            Op::Horner {
                start: Operand::Previous,
                parts: vec![Operand::Intermediate(49), Operand::Intermediate(100)],
                factor: Operand::Scalar(0),
            },
        ));
        let program = GateProgram::new(&steps, &[0]).unwrap();
        assert_eq!(program.len(), 51, "the store is folded into its readers");
        assert!(program.slots() <= 2, "{} slots", program.slots());
        assert!(program.reads_previous());

        let rows = 200; // three full blocks and a partial one
        let column = random_scalars(rows, 1);
        let scalars = [Fr::from(3u64)];
        let inputs = GateInputs {
            scalars: &scalars,
            columns: &[&column],
        };
        let previous = random_scalars(rows, 2);
        let (mut got, mut expected) = (previous.clone(), previous);
        program.evaluate_cpu(&inputs, &mut got);
        reference_gates(&steps, &[0], &inputs, &mut expected);
        assert!(got == expected);
    }

    #[test]
    fn a_program_that_is_one_read_or_nothing_evaluates() {
        let rows = 70;
        let column = random_scalars(rows, 3);
        let inputs = GateInputs {
            scalars: &[Fr::from(9u64)],
            columns: &[&column],
        };
        // A read at rotation -1 wraps at row 0.
        let read = [step(0, Op::Store(col(0, 0)))];
        let program = GateProgram::new(&read, &[-1]).unwrap();
        assert!(program.is_empty());
        let mut got = vec![Fr::ZERO; rows];
        program.evaluate_cpu(&inputs, &mut got);
        assert_eq!(got[0], column[rows - 1]);
        assert_eq!(&got[1..], &column[..rows - 1]);
        // No steps at all: zero, as halo2's evaluator returns.
        let empty = GateProgram::new(&[], &[]).unwrap();
        let mut got = random_scalars(rows, 4);
        empty.evaluate_cpu(&inputs, &mut got);
        assert!(got.iter().all(|v| *v == Fr::ZERO));
    }
}
