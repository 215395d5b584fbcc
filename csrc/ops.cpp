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
  // Masked alpha loss (L1/Charbonnier, unknown + known regions) and Sobel
  // gradient loss in one read of pred, alpha and mask: per-sample sums (B, 8)
  // and the per-pixel gradient of sum_t coef[t] * S_t in `groups` maps
  // (groups, B, 1, H, W), empty when grad is false. Codes: csrc/alpha_gradient.h.
  m.def(
      "alpha_gradient_forward(Tensor pred_alpha, Tensor alpha, Tensor? mask, int mask_mode, float mask_lo, "
      "float mask_hi, float alpha_scale, int rho, float eps, bool mask_in_diff, bool unknown_term, "
      "bool known_term, int sobel, float grad_eps, float[] coef, int[] group, int groups, bool grad) "
      "-> (Tensor sums, Tensor grad)");
}
