// Host-side check of the field and curve headers: compiled with g++ by
// crates/accel/tests/host_headers.rs, which feeds operations on stdin and compares every
// answer with halo2curves.
//
// Protocol: one operation per line, "op arg...", arguments and results as 64-digit
// big-endian hex integers. Field arguments are canonical (not Montgomery) except for
// *_from_mont; curve points are given affine plus a projective scale z (the point is
// lifted to (x z^2, y z^3, z) or XYZZ (x z^2, y z^3, z^2, z^3)); results are affine "x y",
// the identity being "0 0".
#include <cstdio>
#include <cstring>
#include <string>
#include <iostream>
#include <sstream>

#include "curve/g1.cuh"

using namespace pm;

template <class F>
static bool parse(const std::string& hex, F& out) {
    if (hex.size() != 64) return false;
    for (int limb = 0; limb < 8; limb++) {
        u32 v = 0;
        for (int k = 0; k < 8; k++) {
            char ch = hex[(7 - limb) * 8 + k];
            u32 d;
            if (ch >= '0' && ch <= '9') d = ch - '0';
            else if (ch >= 'a' && ch <= 'f') d = ch - 'a' + 10;
            else if (ch >= 'A' && ch <= 'F') d = ch - 'A' + 10;
            else return false;
            v = (v << 4) | d;
        }
        out.v[limb] = v;
    }
    return true;
}

template <class F>
static std::string hex(const F& f) {
    char buf[65];
    for (int limb = 7; limb >= 0; limb--) snprintf(buf + (7 - limb) * 8, 9, "%08x", f.v[limb]);
    return std::string(buf, 64);
}

// canonical -> Montgomery, and back for output
template <class F> static F in(const std::string& h, bool& ok) {
    F f;
    ok = ok && parse(h, f);
    return F::to_mont(f);
}
template <class F> static std::string out(const F& f) { return hex(F::from_mont(f)); }

static std::string out_point(const G1Affine& a) {
    if (a.is_identity()) return std::string(64, '0') + " " + std::string(64, '0');
    return out(a.x) + " " + out(a.y);
}

static G1Affine affine(const std::string& x, const std::string& y, bool& ok) {
    G1Affine a;
    a.x = in<Fp>(x, ok);
    a.y = in<Fp>(y, ok);
    return a;
}

static G1Jacobian jac(const G1Affine& a, const Fp& z) {
    if (a.is_identity()) return G1Jacobian::identity();
    G1Jacobian j;
    Fp z2 = Fp::sqr(z);
    j.X = Fp::mul(a.x, z2);
    j.Y = Fp::mul(a.y, Fp::mul(z2, z));
    j.Z = z;
    return j;
}

static G1Xyzz xyzz(const G1Affine& a, const Fp& z) {
    if (a.is_identity()) return G1Xyzz::identity();
    G1Xyzz p;
    p.ZZ = Fp::sqr(z);
    p.ZZZ = Fp::mul(p.ZZ, z);
    p.X = Fp::mul(a.x, p.ZZ);
    p.Y = Fp::mul(a.y, p.ZZZ);
    return p;
}

template <class F>
static bool field_op(const std::string& op, std::istringstream& is, std::string& res) {
    std::string a, b;
    bool ok = true;
    if (op == "mul" || op == "add" || op == "sub") {
        is >> a >> b;
        F x = in<F>(a, ok), y = in<F>(b, ok);
        F r = op == "mul" ? F::mul(x, y) : op == "add" ? F::add(x, y) : F::sub(x, y);
        res = out(r);
    } else if (op == "inv" || op == "neg" || op == "sqr") {
        is >> a;
        F x = in<F>(a, ok);
        res = out(op == "inv" ? F::inverse(x) : op == "neg" ? F::neg(x) : F::sqr(x));
    } else if (op == "to_mont") {
        is >> a;
        F x;
        ok = parse(a, x);
        res = hex(F::to_mont(x));
    } else if (op == "from_mont") {
        is >> a;
        F x;
        ok = parse(a, x);
        res = hex(F::from_mont(x));
    } else {
        return false;
    }
    return ok;
}

int main() {
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line.empty()) continue;
        std::istringstream is(line);
        std::string op;
        is >> op;
        std::string res;
        bool ok = true;
        if (op.rfind("fp_", 0) == 0) {
            ok = field_op<Fp>(op.substr(3), is, res);
        } else if (op.rfind("fr_", 0) == 0) {
            ok = field_op<Fr>(op.substr(3), is, res);
        } else {
            std::string x1, y1, z1, x2, y2, z2;
            if (op == "jac_add" || op == "xyzz_add") {
                is >> x1 >> y1 >> z1 >> x2 >> y2 >> z2;
            } else if (op == "jac_madd" || op == "xyzz_madd") {
                is >> x1 >> y1 >> z1 >> x2 >> y2;
            } else if (op == "jac_dbl" || op == "xyzz_dbl") {
                is >> x1 >> y1 >> z1;
            } else {
                ok = false;
            }
            if (ok) {
                G1Affine p = affine(x1, y1, ok);
                Fp zp = in<Fp>(z1, ok);
                G1Affine q;
                Fp zq;
                if (op == "jac_add" || op == "xyzz_add") {
                    q = affine(x2, y2, ok);
                    zq = in<Fp>(z2, ok);
                } else if (op == "jac_madd" || op == "xyzz_madd") {
                    q = affine(x2, y2, ok);
                }
                G1Affine r;
                if (op == "jac_add") r = G1Jacobian::add(jac(p, zp), jac(q, zq)).to_affine();
                else if (op == "jac_madd") r = G1Jacobian::add_mixed(jac(p, zp), q).to_affine();
                else if (op == "jac_dbl") r = G1Jacobian::dbl(jac(p, zp)).to_affine();
                else if (op == "xyzz_add") r = G1Xyzz::add(xyzz(p, zp), xyzz(q, zq)).to_affine();
                else if (op == "xyzz_madd") r = G1Xyzz::add_mixed(xyzz(p, zp), q).to_affine();
                else r = G1Xyzz::dbl(xyzz(p, zp)).to_affine();
                res = out_point(r);
            }
        }
        if (!ok) {
            std::cout << "error " << line << std::endl;
            return 2;
        }
        std::cout << res << "\n";
    }
    return 0;
}
