// libFuzzer target for the ONNX importer: any bytes either import or give a verdant::Error,
// never a crash, a hang or an unbounded allocation. Small models that import are run once and
// exported back to ONNX.
#include <cstddef>
#include <cstdint>
#include <span>

#include "verdant/core/error.hpp"
#include "verdant/interop/onnx_export.hpp"
#include "verdant/interop/onnx_import.hpp"
#include "verdant/nn/module.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace verdant;
  try {
    // No folder: a model with external data is refused rather than read from disk.
    interop::ImportedModel m =
        interop::import_onnx_bytes(std::span<const std::uint8_t>(data, size), "fuzz.onnx", {});
    Shape shape = m.model->input_shape();
    // Legal but large models would only slow the fuzzer down.
    if (shape_numel(shape) > (1 << 14) || m.model->num_parameters() > (1 << 16)) return 0;
    shape.insert(shape.begin(), 2);
    {
      nn::NoGradGuard no_grad;
      m.model->eval();
      (*m.model)(nn::Variable(Tensor::zeros(shape)));
    }
    interop::export_onnx(*m.model, {});
  } catch (const Error&) {
  }
  return 0;
}
