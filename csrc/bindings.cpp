// The one pybind11 module, mimkernels._C. Torch-free (design.md, decision 1): tensors arrive as
// integer data pointers with sizes and strides, CUDA streams as integer handles (last argument).
// Python (the op front doors) validates shapes, dtypes, devices and contiguity; C++ trusts them.
// Each family adds its functions in its own section below; names end in _cpu or _cuda.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "hog/hog.h"
#include "mask_zoo/data2vec_mask.h"
#include "mask_zoo/dino_mask.h"
#include "mask_zoo/multiblock.h"
#include "mask_zoo/score_mask.h"
#include "mask_zoo/video_masks.h"
#include "masking/mask_generators.h"
#include "masking/masking.h"
#include "rng/rng.h"

namespace py = pybind11;
using namespace mimkernels;

PYBIND11_MODULE(_C, m) {
  m.doc() = "mimkernels native kernels (CPU build of the shared bodies; CUDA when built with nvcc)";
#ifdef MIMKERNELS_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif

  // ---- rng ----
  m.def("philox_fill_cpu", &philox_fill_cpu, py::call_guard<py::gil_scoped_release>());
  m.def("resolve_key_cpu", &resolve_key_cpu);
  m.def("host_avx2", &host_avx2);
#ifdef MIMKERNELS_WITH_CUDA
  m.def("philox_fill_cuda", &philox_fill_cuda, py::call_guard<py::gil_scoped_release>());
#endif

  // ---- masking ----
  m.def("mae_mask_indices_cpu", &mae_mask_indices_cpu, py::call_guard<py::gil_scoped_release>());
#ifdef MIMKERNELS_WITH_CUDA
  m.def("mae_mask_indices_cuda", &mae_mask_indices_cuda, py::call_guard<py::gil_scoped_release>());
  m.def("mae_mask_indices_counts_cuda", &mae_mask_indices_counts_cuda, py::call_guard<py::gil_scoped_release>());
#endif
  m.def("mae_mask_indices_counts_cpu", &mae_mask_indices_counts_cpu, py::call_guard<py::gil_scoped_release>());
  m.def("simmim_mask_cpu", &simmim_mask_cpu, py::call_guard<py::gil_scoped_release>());
  m.def("block_mask_cpu", &block_mask_cpu, py::call_guard<py::gil_scoped_release>());
  m.def("block_mask_counts_cpu", &block_mask_counts_cpu, py::call_guard<py::gil_scoped_release>());
  m.def("mask_avg_dist_cpu", &mask_avg_dist_cpu, py::call_guard<py::gil_scoped_release>());
#ifdef MIMKERNELS_WITH_CUDA
  m.def("simmim_mask_cuda", &simmim_mask_cuda, py::call_guard<py::gil_scoped_release>());
  m.def("block_mask_cuda", &block_mask_cuda, py::call_guard<py::gil_scoped_release>());
  m.def("block_mask_counts_cuda", &block_mask_counts_cuda, py::call_guard<py::gil_scoped_release>());
  m.def("mask_avg_dist_cuda", &mask_avg_dist_cuda, py::call_guard<py::gil_scoped_release>());
  m.def("mask_avg_dist_workspace_bytes", &mask_avg_dist_workspace_bytes);
#endif

  // ---- mask zoo: multi-block ----
  m.def("multiblock_mask_cpu", &multiblock_mask_cpu, py::call_guard<py::gil_scoped_release>());
  m.def("multiblock_mask_3d_cpu", &multiblock_mask_3d_cpu, py::call_guard<py::gil_scoped_release>());
  m.def("multiblock_list_widths_cpu", &multiblock_list_widths_cpu);
  m.def("multiblock_cut_lists_cpu", &multiblock_cut_lists_cpu, py::call_guard<py::gil_scoped_release>());
#ifdef MIMKERNELS_WITH_CUDA
  m.def("multiblock_mask_cuda", &multiblock_mask_cuda, py::call_guard<py::gil_scoped_release>());
  m.def("multiblock_mask_3d_cuda", &multiblock_mask_3d_cuda, py::call_guard<py::gil_scoped_release>());
#endif

  // ---- mask zoo: tube, running cell, uniform ----
  m.def("tube_mask_cpu", &tube_mask_cpu, py::call_guard<py::gil_scoped_release>());
  m.def("running_cell_mask_cpu", &running_cell_mask_cpu, py::call_guard<py::gil_scoped_release>());
  m.def("uniform_mask_cpu", &uniform_mask_cpu, py::call_guard<py::gil_scoped_release>());
#ifdef MIMKERNELS_WITH_CUDA
  m.def("tube_mask_cuda", &tube_mask_cuda, py::call_guard<py::gil_scoped_release>());
  m.def("running_cell_mask_cuda", &running_cell_mask_cuda, py::call_guard<py::gil_scoped_release>());
  m.def("uniform_mask_cuda", &uniform_mask_cuda, py::call_guard<py::gil_scoped_release>());
#endif

  // ---- mask zoo: data2vec, score ----
  m.def("data2vec_mask_cpu", &data2vec_mask_cpu, py::call_guard<py::gil_scoped_release>());
  m.def("score_mask_cpu", &score_mask_cpu, py::call_guard<py::gil_scoped_release>());
#ifdef MIMKERNELS_WITH_CUDA
  m.def("data2vec_mask_cuda", &data2vec_mask_cuda, py::call_guard<py::gil_scoped_release>());
  m.def("score_mask_cuda", &score_mask_cuda, py::call_guard<py::gil_scoped_release>());
#endif

  // ---- mask zoo: dino (per-sample counts) ----
  m.def("dino_collate_cpu", &dino_collate_cpu, py::call_guard<py::gil_scoped_release>());
  m.def("dino_index_lists_cpu", &dino_index_lists_cpu, py::call_guard<py::gil_scoped_release>());
#ifdef MIMKERNELS_WITH_CUDA
  m.def("dino_collate_cuda", &dino_collate_cuda, py::call_guard<py::gil_scoped_release>());
  m.def("dino_collate_workspace_bytes", &dino_collate_workspace_bytes);
#endif

  // ---- hog ----
  m.def("hog_cpu", &hog_cpu, py::call_guard<py::gil_scoped_release>());
#ifdef MIMKERNELS_WITH_CUDA
  m.def("hog_cuda", &hog_cuda, py::call_guard<py::gil_scoped_release>());
#endif
}
