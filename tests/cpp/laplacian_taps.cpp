// The streaming tap evaluators and the 1D interior-or-border functions of
// csrc/laplacian.h (what the CUDA kernels use instead of Taps arrays) against
// apply_taps over the tap lists (what the CPU kernel uses): bitwise equal for
// every index, even size 2..40 and padding, and every input read inside the
// footprint the CUDA tiles size their halos by. Built and run by
// tests/test_laplacian.py::test_tap_streams_match_tap_lists.
#include <cstdio>
#include <cstring>
#include <random>
#include "laplacian.h"
using namespace mattingloss::lap;
template <typename T> bool same(T a, T b) { return std::memcmp(&a, &b, sizeof(T)) == 0; }
int main() {
  std::mt19937_64 g(1);
  std::uniform_real_distribution<double> u(-1, 1);
  long bad = 0, checks = 0;
  for (int mode = 0; mode < 2; ++mode)
    for (int64_t n = 2; n <= 40; n += 2) {
      if (mode == kReflect && n < 4) continue;
      const int64_t m = n / 2;
      double fine[64], coarse[64];
      float ff[64], cf[64];
      for (int i = 0; i < 64; ++i) { fine[i] = u(g); coarse[i] = u(g); ff[i] = float(u(g)); cf[i] = float(u(g)); }
      int64_t lo, hi;
      auto fread = [&](int64_t j) { if (j < lo || j > hi || j < 0 || j >= n) ++bad; return fine[j]; };
      auto cread = [&](int64_t j) { if (j < lo || j > hi || j < 0 || j >= m) ++bad; return coarse[j]; };
      auto ffr = [&](int64_t j) { return ff[j]; };
      auto cfr = [&](int64_t j) { return cf[j]; };
      for (int64_t a = 0; a < m; ++a) {
        Taps<double> t; Taps<float> tf;
        lo = 2 * a - 2; hi = 2 * a + 2;
        down_taps(a, n, mode, t); down_taps(a, n, mode, tf); ++checks;
        if (!same(apply_taps(t, fread), down_1d<double>(a, n, mode, fread))) { ++bad; printf("down n=%ld a=%ld\n", n, a); }
        if (!same(apply_taps(tf, ffr), down_1d<float>(a, n, mode, ffr))) { ++bad; printf("downf n=%ld a=%ld\n", n, a); }
        if (!same(apply_taps(t, fread), down_general<double>(a, n, mode, fread))) { ++bad; }
        up_adjoint_taps(a, n, mode, t); up_adjoint_taps(a, n, mode, tf);
        if (!same(apply_taps(t, fread), up_adjoint_1d<double>(a, n, mode, fread))) { ++bad; printf("upT n=%ld a=%ld\n", n, a); }
        if (!same(apply_taps(tf, ffr), up_adjoint_1d<float>(a, n, mode, ffr))) { ++bad; printf("upTf n=%ld a=%ld\n", n, a); }
        if (!same(apply_taps(t, fread), up_adjoint_general<double>(a, n, mode, fread))) { ++bad; }
      }
      for (int64_t r = 0; r < n; ++r) {
        Taps<double> t; Taps<float> tf;
        lo = r / 2 - 1; hi = r / 2 + 1;
        up_taps(r, n, mode, t); up_taps(r, n, mode, tf); ++checks;
        if (!same(apply_taps(t, cread), up_1d<double>(r, n, mode, cread))) { ++bad; printf("up n=%ld r=%ld\n", n, r); }
        if (!same(apply_taps(tf, cfr), up_1d<float>(r, n, mode, cfr))) { ++bad; printf("upf n=%ld r=%ld\n", n, r); }
        if (!same(apply_taps(t, cread), up_general<double>(r, n, mode, cread))) { ++bad; }
        down_adjoint_taps(r, n, mode, t); down_adjoint_taps(r, n, mode, tf);
        if (!same(apply_taps(t, cread), down_adjoint_1d<double>(r, n, mode, cread))) { ++bad; printf("downT n=%ld r=%ld\n", n, r); }
        if (!same(apply_taps(tf, cfr), down_adjoint_1d<float>(r, n, mode, cfr))) { ++bad; printf("downTf n=%ld r=%ld\n", n, r); }
        if (!same(apply_taps(t, cread), down_adjoint_general<double>(r, n, mode, cread))) { ++bad; }
      }
    }
  printf("checks %ld bad %ld\n", checks, bad);
  return bad != 0;
}
