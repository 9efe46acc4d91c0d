// The quotient's arithmetic: one kernel that interprets a gate program
// (crates/accel/src/gates.rs, GateProgram::device_words) at every row of one coset part.
//
// Host sequence (crates/accel/src/cuda.rs): the program words, the scalars, the columns (one
// buffer, column-major, n rows each), the rotations and the values go up; one launch of
// gates_evaluate with a fixed grid that strides over the rows; the values come back.
// Intermediate results live in `slots`, slot-major with one word-group per thread
// (slots[s * stride + thread]), so that the threads of a warp read and write neighbouring
// elements. Values are Fr in Montgomery form (halo2curves' raw layout).
//
// Program words: [steps, has_result, result], then per step: opcode | parts << 8 (1 add,
// 2 sub, 3 mul, 4 square, 5 double, 6 negate, 7 Horner, 8 copy), the target
// slot, the operands (binary: a, b; unary: a; Horner: start, factor, parts...). An operand is
// kind << 30 | payload: 0 scalar index, 1 slot, 2 column << 12 | rotation index, 3 previous.
#include "field/bn254.cuh"

using namespace pm;

struct GateRow {
    const Fr* scalars;
    const Fr* columns;
    const i32* rotations;
    const Fr* slots;
    u64 stride;
    u64 thread;
    u32 n;
    u32 row;
    Fr previous;
};

static __device__ __forceinline__ Fr gate_operand(const GateRow& r, u32 w) {
    u32 payload = w & 0x3fffffffu;
    switch (w >> 30) {
        case 0:
            return r.scalars[payload];
        case 1:
            return r.slots[(u64)payload * r.stride + r.thread];
        case 2: {
            i64 at = ((i64)r.row + (i64)r.rotations[payload & 0xfffu]) % (i64)r.n;
            if (at < 0) at += r.n;
            return r.columns[(u64)(payload >> 12) * r.n + (u64)at];
        }
        default:
            return r.previous;
    }
}

extern "C" __global__ void gates_evaluate(const u32* program, const Fr* scalars,
                                          const Fr* columns, const i32* rotations, u32 n,
                                          Fr* values, Fr* slots) {
    u64 stride = (u64)gridDim.x * blockDim.x;
    u64 thread = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u32 steps = program[0];
    for (u64 row = thread; row < n; row += stride) {
        GateRow r = {scalars, columns, rotations, slots, stride, thread, n, (u32)row, values[row]};
        const u32* w = program + 3;
        for (u32 s = 0; s < steps; s++) {
            u32 code = w[0] & 0xffu;
            u32 parts = w[0] >> 8;
            u32 target = w[1];
            Fr v;
            switch (code) {
                case 1:
                    v = Fr::add(gate_operand(r, w[2]), gate_operand(r, w[3]));
                    w += 4;
                    break;
                case 2:
                    v = Fr::sub(gate_operand(r, w[2]), gate_operand(r, w[3]));
                    w += 4;
                    break;
                case 3:
                    v = Fr::mul(gate_operand(r, w[2]), gate_operand(r, w[3]));
                    w += 4;
                    break;
                case 4:
                    v = Fr::sqr(gate_operand(r, w[2]));
                    w += 3;
                    break;
                case 5:
                    v = Fr::dbl(gate_operand(r, w[2]));
                    w += 3;
                    break;
                case 6:
                    v = Fr::neg(gate_operand(r, w[2]));
                    w += 3;
                    break;
                case 8:
                    v = gate_operand(r, w[2]);
                    w += 3;
                    break;
                default: {
                    // Horner: v = start; v = v * factor + part, for each part.
                    v = gate_operand(r, w[2]);
                    Fr factor = gate_operand(r, w[3]);
                    for (u32 p = 0; p < parts; p++) {
                        v = Fr::add(Fr::mul(v, factor), gate_operand(r, w[4 + p]));
                    }
                    w += 4 + parts;
                    break;
                }
            }
            slots[(u64)target * stride + thread] = v;
        }
        values[row] = program[1] ? gate_operand(r, program[2]) : Fr::zero();
    }
}
