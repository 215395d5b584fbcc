// Scratch rows for the CPU row loops. Every row starts on a cache line: a
// vector store split across two lines costs two, and rows at arbitrary
// offsets made the stencil loops up to a third slower. Each row also has at
// least a cache line of zeros on either side, which the stencils read as their
// zero padding (or as values they compute and then overwrite at the edges).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>

namespace mattingloss {
namespace {

template <typename acc_t>
class PaddedRows {
 public:
  static constexpr int64_t kPad = 64 / sizeof(acc_t);  // elements per cache line

  // `count` rows of `n` elements, the padding zero; the rows too with `zeroed`,
  // else uninitialised.
  PaddedRows(int64_t count, int64_t n, bool zeroed = false)
      : pitch_((std::max<int64_t>(n, 1) + kPad - 1) / kPad * kPad + kPad),
        storage_(static_cast<acc_t*>(::operator new[]((count * pitch_ + kPad) * sizeof(acc_t), kAlign))) {
    base_ = storage_.get() + kPad;
    std::fill(storage_.get(), base_, acc_t(0));
    for (int64_t i = 0; i < count; ++i) std::fill((*this)[i] + (zeroed ? 0 : n), (*this)[i] + pitch_, acc_t(0));
  }

  acc_t* operator[](int64_t i) const { return base_ + i * pitch_; }
  int64_t pitch() const { return pitch_; }  // elements from one row to the next

 private:
  static constexpr std::align_val_t kAlign{64};
  struct Free {
    void operator()(acc_t* p) const { ::operator delete[](p, kAlign); }
  };
  int64_t pitch_;
  std::unique_ptr<acc_t, Free> storage_;
  acc_t* base_;
};

}  // namespace
}  // namespace mattingloss
