#pragma once
// libverdant_runtime: loads a .vdm edge model and runs inference. Standard C++ only.
// Loading validates the whole file (size, CRC-32, version, every offset and shape) and
// reports problems as one line through `error`; it never throws. After loading, run()
// neither allocates nor throws: every buffer comes from one arena sized at load. A model
// runs with the kernel table chosen at load (kernels.hpp), the best one by default.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "verdant/runtime/vdm_format.hpp"

namespace verdant::runtime {

struct KernelTable;

struct LoadOptions {
  // The kernels the model runs with: one of supported_kernel_tables() (kernels.hpp), or any
  // table whose cpu_supports() holds. nullptr: active_kernels().
  const KernelTable* kernels = nullptr;
  // How load_buffer's errors name the data (load_file names the path).
  std::string name = "<buffer>";
};

enum class RunStatus { ok = 0, bad_input_size, bad_output_size, bad_layer };
const char* run_status_message(RunStatus s);

class Model {
 public:
  // Memory-maps the file and uses the weights in place. On failure returns nullptr and
  // sets *error to one line naming the file and the problem.
  static std::unique_ptr<Model> load_file(const std::string& path, std::string* error,
                                          const LoadOptions& options = {});
  // Copies `size` bytes into an aligned buffer owned by the model.
  static std::unique_ptr<Model> load_buffer(const void* data, std::size_t size, std::string* error,
                                            const LoadOptions& options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  std::size_t input_size() const;  // c * h * w
  std::uint32_t input_c() const { return header_.input_c; }
  std::uint32_t input_h() const { return header_.input_h; }
  std::uint32_t input_w() const { return header_.input_w; }
  std::size_t output_size() const { return header_.output_size; }
  float byte_scale() const { return header_.byte_scale; }
  float byte_offset() const { return header_.byte_offset; }
  const char* name() const { return header_.name; }
  std::size_t num_layers() const { return header_.num_layers; }
  const vdm::LayerRecord& layer(std::size_t i) const;
  // Elements of the activation entering layer i (i == num_layers(): the output).
  std::size_t activation_size(std::size_t i) const;
  const char* isa() const;     // kernel table in use
  std::uint64_t macs() const;  // multiply-accumulates per inference (stored weights if sparse)
  // True when sparse (CSR or BSR) layer i runs through the dense kernel (see
  // KernelTable::csr_max_density and bsr_max_density).
  bool densified(std::size_t i) const;

  // Runs the whole model: input is CHW f32, output receives output_size() f32 values.
  RunStatus run(const float* input, std::size_t input_n, float* output, std::size_t output_n);
  // Runs layers [0, end_layer) and writes the activation entering layer end_layer as f32
  // (dequantized if it is u8). Used for on-device fine-tuning of the head.
  RunStatus run_until(const float* input, std::size_t input_n, std::size_t end_layer, float* output,
                      std::size_t output_n);
  // Runs the whole model and widens mins/maxs (num_layers() entries each) with the range of
  // each layer's output before quantization (post-activation). Used for calibration.
  RunStatus run_observe(const float* input, std::size_t input_n, float* mins, float* maxs);
  // Index of the largest output, or -1 on a size mismatch.
  int predict(const float* input, std::size_t input_n);

  // The raw file (mapped or copied), e.g. to patch a layer and write a new file.
  const std::uint8_t* file_data() const { return file_; }
  std::size_t file_size() const { return file_size_; }
  // Tensor records of layer i, in file order.
  const vdm::TensorRecord* tensors(std::size_t i) const;

  struct Impl;

 private:
  Model();
  static std::unique_ptr<Model> finish_load(std::unique_ptr<Model> model, const std::string& name,
                                            const KernelTable* kernels, std::string* error);
  vdm::FileHeader header_{};
  const std::uint8_t* file_ = nullptr;
  std::size_t file_size_ = 0;
  void* mapping_ = nullptr;        // mmap'ed region or nullptr
  std::uint8_t* owned_ = nullptr;  // aligned copy for load_buffer
  std::unique_ptr<Impl> impl_;
};

}  // namespace verdant::runtime
