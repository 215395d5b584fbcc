"""Builds mattingloss._C: the CPU kernels always, the CUDA kernels whenever a
CUDA toolkit and a CUDA build of torch are found, even with no GPU visible.

Environment:
  MATTINGLOSS_CUDA=0/1    force the CUDA kernels off / on (on: fail if they can't be built)
  CUDA_HOME               the toolkit (default: found as described in find_cuda_home)
  TORCH_CUDA_ARCH_LIST    GPU architectures (default: DEFAULT_ARCHS when no GPU is visible)
  MAX_JOBS                parallel compile jobs (default: torch's; CI uses 2)

Objects are kept in build/ninja/ (ignored by git) whatever command builds:
`pip install -e` and `setup.py build_ext` reuse them, so ninja recompiles only
the sources (or headers) that changed. ccache or sccache, when installed, wraps
the compilers (torch 2.14 does that itself; TORCH_NO_COMPILER_WRAPPER=1 turns it off).

With no GPU visible (CI, a cluster's login node) DEFAULT_ARCHS is "7.5;8.0+PTX":
SASS for Turing (7.5, the oldest nvcc 13 builds) and Ampere (8.0, which
8.6/8.7/8.9 run), and compute_80 PTX that the driver compiles for Hopper,
Blackwell and newer at first use (about 7 s of ptxas for the five kernel files
on a 2-core VM), then keeps in its cache (~/.nv/ComputeCache). No kernel uses
an arch-specific feature. From compute_80 PTX, ptxas makes sm_90 code that
matches a native build's (instruction counts within 0.2% per file, bf16
conversions in hardware; compute_75 PTX would emulate those). Each more arch
costs about 3 s of CPU per .cu file: the former "7.5;8.0;9.0;10.0;12.0+PTX"
took 142 s of CPU for the five files, this takes 58 s (nvcc 13.0). On Blackwell
the JIT code differs from a native build's (instruction counts -16% to +22% per
file), so build there on the GPU machine (its arch is picked) or name the arch
in TORCH_CUDA_ARCH_LIST, as wheel and docker builders name theirs.
"""
import glob
import os
import shutil

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))

# No GPU visible: SASS for 7.5 and 8.0, compute_80 PTX for the rest (see above).
DEFAULT_ARCHS = "7.5;8.0+PTX"


def find_cuda_home():
    """The real toolkit, with bin/nvcc and include/cuda_runtime.h.

    torch guesses CUDA_HOME from the `nvcc` on PATH; where that is a wrapper
    script outside the toolkit (as on our dev and CI machines) the guess is
    wrong and the link fails, so look for the toolkit itself.
    """
    def is_toolkit(path):
        return bool(path) and os.path.isfile(os.path.join(path, "bin", "nvcc")) and os.path.isfile(
            os.path.join(path, "include", "cuda_runtime.h")
        )

    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    candidates.append("/usr/local/cuda")
    candidates += sorted(glob.glob("/usr/local/cuda-*"), reverse=True)
    return next((c for c in candidates if is_toolkit(c)), None)


def want_cuda(torch):
    flag = os.environ.get("MATTINGLOSS_CUDA", "").strip()
    if flag == "0":
        return False
    home = find_cuda_home()
    ok = home is not None and torch.version.cuda is not None
    if flag == "1" and not ok:
        raise RuntimeError(
            f"MATTINGLOSS_CUDA=1 but the CUDA kernels can't be built: toolkit={home!r}, "
            f"torch.version.cuda={torch.version.cuda!r} (install a CUDA build of torch and set CUDA_HOME)"
        )
    if ok:
        os.environ["CUDA_HOME"] = home  # before torch.utils.cpp_extension reads it
    return ok


def extension():
    import torch

    cuda = want_cuda(torch)
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    # -fno-math-errno and -fno-trapping-math let GCC vectorize sqrt and the
    # trimap compares; no -ffast-math, so every result stays IEEE. -fopenmp:
    # at::parallel_for runs serially in an extension built without it.
    cxx = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]
    # -g0: python's sysconfig CFLAGS, which come first, carry -g; debug info costs
    # a third or more of these files' compile time (alpha_sobel_cpu.cpp: 43 ->
    # 27 s of CPU). nvcc gets no -g from torch.
    cxx.append("-g0")
    link = ["-fopenmp"]
    if not cuda:
        print("mattingloss: building the CPU kernels only (no CUDA toolkit or a CPU build of torch)")
        return CppExtension("mattingloss._C", sources, extra_compile_args={"cxx": cxx},
                            extra_link_args=link), BuildExtension
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCHS
    print(f"mattingloss: building CPU and CUDA kernels with {os.environ['CUDA_HOME']} "
          f"for TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', '(visible GPUs)')}")
    sources += sorted(glob.glob("csrc/cuda/*.cpp") + glob.glob("csrc/cuda/*.cu"))
    nvcc = ["-O3", "--expt-relaxed-constexpr"]
    if os.environ.get("MATTINGLOSS_PTXAS_VERBOSE"):
        nvcc.append("-Xptxas=-v")
    # MATTINGLOSS_CUDA: each op's host file registers its CUDA kernels too (and
    # the op headers declare the launchers), which a CPU-only build leaves out.
    return (
        CUDAExtension("mattingloss._C", sources, define_macros=[("MATTINGLOSS_CUDA", None)],
                      extra_compile_args={"cxx": cxx, "nvcc": nvcc}, extra_link_args=link),
        BuildExtension,
    )


def persistent(build_ext):
    """build_ext with its objects in build/ninja/: `pip install -e` otherwise
    builds in a fresh temporary folder each time, where ninja finds no object to
    reuse and recompiles every file (minutes) after any change or none."""

    class PersistentBuild(build_ext):
        def finalize_options(self):
            super().finalize_options()
            self.build_temp = os.path.join(ROOT, "build", "ninja")

    return PersistentBuild


ext, build_ext = extension()
setup(
    packages=find_packages(include=["mattingloss", "mattingloss.*"]),
    ext_modules=[ext],
    cmdclass={"build_ext": persistent(build_ext.with_options(no_python_abi_suffix=True))},
)
