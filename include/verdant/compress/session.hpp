#pragma once
// Runs a recipe's modifiers over a training run of an nn::Sequential: masks for pruning and
// sparse training, fake-quant for QAT/PTQ, and (in run_recipe) the distillation loss.
// The hooks mirror the training loop's (train::TrainerCallback): any loop can drive it.
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "verdant/compress/quantize.hpp"
#include "verdant/compress/recipe.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/module.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/train/checkpoint.hpp"

namespace verdant::compress {

struct LayerStat {
  std::string name;
  Shape shape;
  std::int64_t params = 0;
  std::int64_t nonzero = 0;
  double sparsity() const { return params ? 1.0 - double(nonzero) / double(params) : 0.0; }
};
std::vector<LayerStat> layer_stats(nn::Module& model);

// A Sequential whose Linear/Conv2d inputs pass through 8-bit asymmetric fake-quant: ranges
// from moving averages while training (QAT) or from calibration (PTQ). Holds the same
// children under the same names, so parameter names do not change.
class FakeQuantSequential : public nn::Sequential {
 public:
  FakeQuantSequential(const nn::Sequential& inner, const QuantizeParams& params);
  nn::Variable forward(const nn::Variable& x) override;
  void set_active(bool on) { active_ = on; }
  void start_calibration();
  void finish_calibration();
  // Activation parameters per quantized layer input (for reports and exporters).
  std::vector<QuantParams> activation_params() const;
  // The moving-average ranges, for an exact resume (meta "compress.activation_ema.<i>").
  void save_state(train::Checkpoint& c) const;
  void restore_state(const train::Checkpoint& c, const std::string& origin);

 private:
  struct Site {
    RangeObserver ema;
    std::unique_ptr<Calibrator> calib;
    QuantParams fixed;
    bool has_fixed = false;
  };
  QuantizeParams qp_;
  bool active_ = false;
  bool calibrating_ = false;
  std::vector<Site> sites_;  // one per child; used only for Linear/Conv2d children
};

class Session {
 public:
  Session(Recipe recipe, std::shared_ptr<nn::Sequential> model, std::uint64_t seed = 0);
  ~Session();

  const Recipe& recipe() const { return recipe_; }
  // The model to run forward: a FakeQuantSequential when quantizing, else the model.
  std::shared_ptr<nn::Sequential> forward_model() const { return forward_; }
  bool quantizes() const { return quant_ != nullptr; }
  bool needs_calibration() const;

  void begin(std::int64_t steps_per_epoch, std::int64_t epochs);
  // The optimizer that trains the model, when the session may touch its state: sparse
  // training then zeroes the momentum of the connections it moves, so masked-out weights stay
  // exactly zero by themselves and the layers on the CSR kernels skip the masking passes.
  void attach_optimizer(nn::Optimizer* optimizer) { optimizer_ = optimizer; }
  void step_begin(std::int64_t epoch, std::int64_t step, std::int64_t global_step);
  void before_optimizer_step(std::int64_t epoch, std::int64_t step, std::int64_t global_step);
  void step_end();
  void epoch_end(std::int64_t epoch);
  void start_calibration();
  void finish_calibration();
  // Final masks and quantized weights; structured removal builds a smaller model. Returns
  // the model to keep (forward_model() is updated too).
  std::shared_ptr<nn::Sequential> finish();

  // Training state a checkpoint must carry for an exact resume: the masks (tensors
  // "compress/mask/<weight name>", u8), the pruning schedules' positions, the activation ranges
  // of quantization-aware training and the random state (meta "compress.*"). Masks cannot be
  // rebuilt from the zeros: RigL regrows connections at exactly zero, and a trained weight can be
  // zero by chance.
  void save_state(train::Checkpoint& c) const;
  // Takes that state back, before begin(); begin() then keeps the restored masks. Returns false
  // (and changes nothing) for a checkpoint without that state, e.g. one written by an older
  // version: begin() then rebuilds the masks from the zeros as before. Throws verdant::Error
  // naming `origin` when the masks do not fit this recipe and model.
  bool restore_state(const train::Checkpoint& c, const std::string& origin);

  // One line per notable event (mask updates, removals), for the report.
  const std::vector<std::string>& log() const { return log_; }
  std::vector<QuantParams> activation_params() const;

 private:
  struct Layer {
    std::string name;
    nn::Variable weight, bias;
    Tensor mask;                   // u8, shape of weight
    Tensor shadow;                 // fp32 copy of the weight while fake-quantized (QAT)
    nn::Linear* linear = nullptr;  // the Linear owning the weight, if any
    bool masks_hold = false;       // zero outside the mask without masking passes (see above)
  };
  struct PruneState {
    const Modifier* m;
    std::vector<std::size_t> layers;
    double next_update = 0;
    double current = 0;
    bool done = false;
  };
  struct SparseState {
    const Modifier* m;
    std::vector<std::size_t> layers;
  };
  Layer& layer(const std::string& name);
  void prune_to(PruneState& p, double sparsity);
  void apply_masks();
  // Linear layers pruned in 4x4 blocks to a low block density train through the block-sparse
  // kernels, unstructured masks (pruning, sparse training) of low density through the CSR
  // kernels (work proportional to what is kept); others, or after finish(), run dense.
  void refresh_sparse_patterns(bool enable);
  // RigL's drop fraction when its mask update falls on this step, else 0.
  double rigl_update_fraction(const Modifier& m, std::int64_t global_step) const;
  // drop_and_grow on one layer, the moved connections' optimizer state zeroed.
  std::int64_t move_connections(Layer& l, const Tensor& grad, double fraction);
  void mask_grads();
  double time_of(std::int64_t epoch, std::int64_t step) const;
  bool quant_active(double t) const;

  Recipe recipe_;
  std::shared_ptr<nn::Sequential> model_;
  std::shared_ptr<nn::Sequential> forward_;
  std::shared_ptr<FakeQuantSequential> quant_;
  std::vector<Layer> layers_;  // every weight (ndim >= 2) of the model, in order
  std::vector<PruneState> prunes_;
  std::vector<SparseState> sparses_;
  std::vector<std::size_t> quant_layers_;
  std::mt19937_64 rng_;
  std::int64_t steps_per_epoch_ = 1, epochs_ = 0;
  bool weights_quantized_ = false;  // shadow copies hold the float weights
  bool restored_ = false;           // masks and schedule positions came from a checkpoint
  bool dense_grad_step_ = false;    // RigL's dense gradients are computed on this step
  nn::Optimizer* optimizer_ = nullptr;
  std::vector<std::string> log_;
};

}  // namespace verdant::compress
