#pragma once
// Compression recipes: a YAML file that says which modifier (prune, sparse_train, quantize,
// distill) touches which layers over which epochs. Parsing keeps the line of every key so
// that later checks (patterns against the model, the teacher's shape) can still name it.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace verdant::compress {

enum class ModifierKind { prune, sparse_train, quantize, distill };
const char* modifier_name(ModifierKind k);

// neurons = rows / output channels; block = rectangular blocks of the [out, in*kh*kw] matrix
enum class PruneStructure { unstructured, neurons, block };
enum class PruneScope { layer, global };
enum class Norm { l1, l2 };
enum class SparseMethod { set, rigl };
enum class Distribution { uniform, er, erk };
enum class QuantMode { qat, ptq };
enum class Calibration { minmax, percentile, mse };

struct PruneParams {
  PruneStructure structure = PruneStructure::unstructured;
  PruneScope scope = PruneScope::layer;
  Norm norm = Norm::l1;
  double init_sparsity = 0.0;
  double final_sparsity = 0.5;
  double update_every = 1.0;    // epochs between mask updates (fractions allowed)
  bool remove = true;           // structured: physically remove pruned neurons at the end
  std::int64_t block_rows = 4;  // structure block: rows x cols of one block
  std::int64_t block_cols = 4;
};

struct SparseTrainParams {
  SparseMethod method = SparseMethod::rigl;
  double sparsity = 0.9;  // overall target over the selected layers
  Distribution distribution = Distribution::erk;
  double drop_fraction = 0.3;     // RigL: initial, cosine-annealed; SET: constant per epoch
  int update_every = 100;         // RigL: steps between mask updates (Delta T)
  std::optional<double> epsilon;  // SET: Erdos-Renyi epsilon (overrides `sparsity`)
};

struct QuantizeParams {
  QuantMode mode = QuantMode::qat;
  int weight_bits = 8;                // symmetric, per output channel
  int activation_bits = 8;            // asymmetric
  double activation_momentum = 0.99;  // moving average of activation ranges (QAT)
  Calibration calibration = Calibration::minmax;
  double percentile = 99.99;
  int calibration_batches = 16;
};

struct DistillParams {
  std::string teacher;        // path to a Verdant checkpoint (resolved against the recipe's dir)
  std::string teacher_model;  // built-in name or YAML model file the checkpoint was made for
  double alpha = 0.5;         // weight of the hard-label cross-entropy
  double temperature = 4.0;
};

struct Modifier {
  ModifierKind kind = ModifierKind::prune;
  std::vector<std::string> layers = {"*"};  // names or glob patterns
  double start_epoch = 0;
  double end_epoch = 0;  // start == end: one-shot
  PruneParams prune;
  SparseTrainParams sparse;
  QuantizeParams quant;
  DistillParams distill;
  int line = 0;                         // 1-based line of the modifier in the recipe
  std::map<std::string, int> key_line;  // 1-based line of each key as written
  int line_of(const std::string& key) const;
};

struct Recipe {
  std::string source = "<recipe>";  // file name used in error messages
  std::optional<int> epochs;        // fine-tuning length for `verdant compress`
  std::optional<double> lr;
  std::vector<Modifier> modifiers;

  // "file:line: " prefix for errors about a modifier key.
  std::string where(const Modifier& m, const std::string& key) const;
  const Modifier* find(ModifierKind k) const;
  double last_epoch() const;  // the latest end_epoch of any modifier
};

// Throws verdant::Error ("file:line: ...") on invalid YAML, unknown modifier or key, wrong
// types and out-of-range values (sparsity outside [0, 1), ...).
Recipe parse_recipe(std::string_view yaml_text, std::string source_name = "<recipe>");
Recipe load_recipe(const std::filesystem::path& path);

// Glob match ('*', '?', '[...]') of a pattern against a parameter name. A pattern also
// matches a parameter when it matches the parameter's module (the name without its last
// dotted component), so `fc1` selects `fc1.weight`.
bool pattern_matches(const std::string& pattern, const std::string& param_name);

// The parameter names a modifier applies to: weights only (parameters with ndim >= 2,
// given in `weight_names`, in model order). Throws "file:line: key 'layers': pattern 'x'
// matches no layer" when a pattern selects nothing.
std::vector<std::string> select_layers(const Recipe& r, const Modifier& m,
                                       const std::vector<std::string>& weight_names);

}  // namespace verdant::compress
