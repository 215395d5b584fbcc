// The op schemas (one place for every backend) and the Python module that
// loads them. Fake (meta) kernels and autograd are registered in Python
// (mattingloss/_ops.py), as in pytorch/extension-cpp.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// `import mattingloss._C` runs the static TORCH_LIBRARY registrations below;
// the module itself holds nothing (no pybind11 needed).
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(mattingloss, m) {
  // One read of every input: the loss (a scalar, or the per-pixel map for
  // reduction "none"), [alpha loss, comp loss], the per-sample backward scale
  // and the per-pixel gradients w.r.t. pred_alpha, fg and bg before that scale
  // (empty tensors where not requested). Argument codes: see csrc/dim_loss.h.
  m.def(
      "dim_loss_forward(Tensor pred_alpha, Tensor alpha, Tensor mask, Tensor? image, Tensor? fg, "
      "Tensor? bg, int mask_mode, float mask_lo, float mask_hi, float wl, float eps, float alpha_scale, "
      "float color_scale, int reduction, bool grad_pred, bool grad_fg, bool grad_bg) "
      "-> (Tensor loss, Tensor components, Tensor scale, Tensor grad_pred, Tensor grad_fg, Tensor grad_bg)");
}

TORCH_LIBRARY_FRAGMENT(mattingloss, m) {
  // The Laplacian-pyramid L1 loss of pred - gt / gt_scale (csrc/laplacian.h):
  // the loss, each level's term and the gradient w.r.t. pred (the loss's
  // full gradient, for grad_output 1; empty when not requested). padding:
  // 0 reflect, 1 replicate; weight_mode: 0 none, 1 weight after the pyramid
  // (MGMatting), 2 mask before it (SDMatte, scaled by mask_numer / sum(weight)).
  m.def(
      "laplacian_loss_forward(Tensor pred, Tensor gt, Tensor? weight, int levels, float[] level_weights, "
      "int padding, bool crop_to_even, int weight_mode, float gt_scale, float mask_numer, bool grad_pred) "
      "-> (Tensor loss, Tensor level_losses, Tensor grad_pred)");
}
