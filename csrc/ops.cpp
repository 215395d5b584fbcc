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

// Bumped with mattingloss/_ops.py's ABI_VERSION whenever a schema or an
// argument code (csrc/codes.h) changes: the Python side checks it at import
// instead of repeating every schema.
constexpr int64_t kAbiVersion = 4;

TORCH_LIBRARY(mattingloss, m) {
  m.def("abi_version() -> int", []() -> int64_t { return kAbiVersion; });
  // One read of every input: the loss (a scalar, or the per-pixel map for
  // reduction "none"), [alpha loss, comp loss], the per-sample backward scale
  // and the per-pixel gradients w.r.t. pred_alpha, fg and bg before that scale
  // (empty tensors where not requested). Argument codes: see csrc/dim_loss.h.
  m.def(
      "dim_loss_forward(Tensor pred_alpha, Tensor alpha, Tensor mask, Tensor? image, Tensor? fg, "
      "Tensor? bg, int mask_mode, float mask_lo, float mask_hi, float wl, float eps, float alpha_scale, "
      "float color_scale, int reduction, bool grad_pred, bool grad_fg, bool grad_bg) "
      "-> (Tensor loss, Tensor components, Tensor scale, Tensor grad_pred, Tensor grad_fg, Tensor grad_bg)");
  // The composition loss rho(p*fg + (1-p)*bg - image): one read of every input
  // gives the loss (or the per-pixel map for reduction "none"), the
  // per-sample backward scale and the per-pixel gradients w.r.t. pred_alpha,
  // fg and bg before that scale (empty where not requested). mask is None for
  // mask_mode 3 (all pixels). Codes: see csrc/composition.h.
  m.def(
      "composition_loss_forward(Tensor pred_alpha, Tensor image, Tensor fg, Tensor bg, Tensor? mask, "
      "int mask_mode, float mask_lo, float mask_hi, int rho, float eps, float[] color_scale, "
      "bool count_channels, float guard, int reduction, bool grad_pred, bool grad_fg, bool grad_bg) "
      "-> (Tensor loss, Tensor scale, Tensor grad_pred, Tensor grad_fg, Tensor grad_bg)");
  // RVM's pointwise and temporal-coherence terms in one read of the four
  // (B, T, C, H, W) inputs: the weighted total, the four terms as RVM reports
  // them [pha_l1, pha_coherence, fgr_l1, fgr_coherence] and the final gradients
  // of the total (empty where not requested). See csrc/temporal.h.
  m.def(
      "temporal_loss_forward(Tensor pred_fgr, Tensor pred_pha, Tensor true_fgr, Tensor true_pha, "
      "float true_fgr_scale, float true_pha_scale, float w_pha_l1, float w_pha_coherence, float w_fgr_l1, "
      "float w_fgr_coherence, bool grad_fgr, bool grad_pha) "
      "-> (Tensor total, Tensor terms, Tensor grad_fgr, Tensor grad_pha)");
  // The Laplacian-pyramid L1 loss of pred - gt / gt_scale (csrc/laplacian.h):
  // the loss, each level's term and the gradient w.r.t. pred (the loss's
  // full gradient, for grad_output 1; empty when not requested). padding:
  // 0 reflect, 1 replicate; weight_mode: 0 none, 1 weight after the pyramid
  // (MGMatting), 2 mask before it (SDMatte, scaled by mask_numer / sum(weight)).
  // grad_base (pred's element count) and grad_coef: another loss's gradient
  // folded into grad_pred as it is written (the presets' one gradient buffer):
  // grad_pred = grad_coef * (this gradient) + grad_base. pred (..., H, W): each
  // leading index one image.
  m.def(
      "laplacian_loss_forward(Tensor pred, Tensor gt, Tensor? weight, int levels, float[] level_weights, "
      "int padding, bool crop_to_even, int weight_mode, float gt_scale, float mask_numer, bool grad_pred, "
      "Tensor? grad_base=None, float grad_coef=1.0) "
      "-> (Tensor loss, Tensor level_losses, Tensor grad_pred)");
  // Masked alpha loss (L1/Charbonnier, unknown + known regions) and Sobel
  // gradient loss in one read of pred, alpha and mask: per-sample sums (B, 8)
  // and the per-pixel gradient of sum_t coef[t] * S_t in `groups` maps
  // (groups, B, 1, H, W), empty when grad is false; with per_pixel (pointwise
  // terms only) also the per-pixel values of that sum, (B, 1, H, W) in the
  // accumulation type (reduction "none"). With factors (groups, B), the maps'
  // per-sample factors known in advance (alpha_sobel_weights, then
  // _compose of its sums), one map (1, B, 1, H, W): sum_g factors[g][b] * map g,
  // the total's gradient. Codes: csrc/alpha_sobel.h.
  m.def(
      "alpha_sobel_forward(Tensor pred_alpha, Tensor alpha, Tensor? mask, int mask_mode, float mask_lo, "
      "float mask_hi, float alpha_scale, int rho, float eps, bool mask_in_diff, bool unknown_term, "
      "bool known_term, int sobel, float grad_eps, float[] coef, int[] group, int groups, bool grad, "
      "bool per_pixel=False, Tensor? factors=None) -> (Tensor sums, Tensor grad, Tensor values)");
  // alpha_sobel_forward's sums of the region weights alone, in the same
  // order (bitwise the same values), from one read of the mask; the other
  // columns 0. What the factors depend on: see above.
  m.def(
      "alpha_sobel_weights(Tensor pred_alpha, Tensor? mask, int mask_mode, float mask_lo, float mask_hi) "
      "-> Tensor");
  // The losses of one alpha_sobel_forward call from its sums, all on the
  // device (no host sync): the total, the three terms (unknown, known, Sobel;
  // before their weights) and the per-sample factors (groups, B) of the
  // gradient maps. norm: AlphaNorm per term (-1: off). Codes: csrc/alpha_sobel.h.
  m.def(
      "alpha_sobel_compose(Tensor sums, int pixels, int[] norm, float[] guard, int crop_pixels, "
      "float penalty, float[] weights, int[] group, int groups, bool count_all) "
      "-> (Tensor total, Tensor components, Tensor factors)");
  // weights, compose, forward with the factors, compose: the losses and the
  // total's gradient (B, 1, H, W) of one prescaled call in one op (every
  // backend: csrc/alpha_sobel_host.cpp). Arguments: _forward's, then
  // _compose's that are not derived from them.
  m.def(
      "alpha_sobel_prescaled(Tensor pred_alpha, Tensor alpha, Tensor? mask, int mask_mode, float mask_lo, "
      "float mask_hi, float alpha_scale, int rho, float eps, bool mask_in_diff, bool unknown_term, "
      "bool known_term, int sobel, float grad_eps, float[] coef, int[] group, int groups, int[] norm, "
      "float[] guard, int crop_pixels, float penalty, float[] weights) "
      "-> (Tensor total, Tensor components, Tensor grad)");
  // Backward of stored gradients, in place: each grad's sample s times
  // grad_output[s or 0] * scale[s or 0] (scale: the loss's per-sample backward
  // scale where forward did not apply it; shared_scale: its first value for
  // every sample), computed in grad's accumulation type and rounded once to
  // grad's dtype. The factor is read on the device; a sample whose factor is 1
  // (loss.backward() of a loss whose forward stored its final gradient) is left
  // as it is.
  m.def("scale_gradient_(Tensor(a!)[] grads, Tensor grad_output, Tensor? scale=None, bool shared_scale=True) -> ()");
  // The evaluation metrics (mattingloss/metrics.py): per sample, the sums
  // every convention's four metrics are made of (csrc/metrics.h MetricSum):
  // SAD and MSE numerators over the region and over the whole image, the
  // region's pixel count, the gradient and connectivity sums (0 where not
  // requested), as float64 (B, 7); and, when `levels`, each pixel's
  // connectivity level k (l = thresholds[k]) as uint8 (B, 1, H, W).
  // pred, gt: (B, 1, H, W) uint8/float32/float64, 0..255 after * factor
  // (convention 4, p3m: 0..1 as x / (255 / factor)); region: uint8 0/1;
  // thresholds: 11; taps: the filter's Gaussian and derivative factors (9 + 9;
  // p3m: scipy's 13 + 13 weights).
  m.def(
      "matting_metrics(Tensor pred, Tensor gt, Tensor region, int convention, float pred_factor, "
      "float gt_factor, float[] thresholds, float[] taps, bool gradient, bool connectivity, bool levels) "
      "-> (Tensor sums, Tensor levels)");
}
