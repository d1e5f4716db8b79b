// Recipe YAML parsing. yaml-cpp stays in this file; every error names file:line and the key.
#include "verdant/compress/recipe.hpp"

#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"

namespace verdant::compress {

const char* modifier_name(ModifierKind k) {
  switch (k) {
    case ModifierKind::prune:
      return "prune";
    case ModifierKind::sparse_train:
      return "sparse_train";
    case ModifierKind::quantize:
      return "quantize";
    case ModifierKind::distill:
      return "distill";
  }
  return "?";
}

int Modifier::line_of(const std::string& key) const {
  auto it = key_line.find(key);
  return it == key_line.end() ? line : it->second;
}

std::string Recipe::where(const Modifier& m, const std::string& key) const {
  return source + ":" + std::to_string(m.line_of(key)) + ": ";
}

const Modifier* Recipe::find(ModifierKind k) const {
  for (const auto& m : modifiers)
    if (m.kind == k) return &m;
  return nullptr;
}

double Recipe::last_epoch() const {
  double e = 0;
  for (const auto& m : modifiers) e = std::max(e, m.end_epoch);
  return e;
}

namespace {

struct Ctx {
  const std::string& source;
  [[noreturn]] void fail(const YAML::Node& at, const std::string& what) const {
    throw Error(source + ":" + std::to_string(at.Mark().line + 1) + ": " + what);
  }
};

template <typename T>
T scalar(const Ctx& cx, const YAML::Node& v, const std::string& key, const char* type_name) {
  if (!v.IsScalar()) cx.fail(v, "key '" + key + "' must be " + type_name);
  try {
    return v.as<T>();
  } catch (const YAML::Exception&) {
    cx.fail(v, "key '" + key + "' must be " + type_name + ", got '" + v.Scalar() + "'");
  }
}

// A map key as written. yaml-cpp accepts lists and maps as keys, and converting one to a
// string throws its own "bad conversion" that names no file.
std::string key_name(const Ctx& cx, const YAML::Node& key, const std::string& context) {
  if (key.IsScalar()) return key.Scalar();
  const char* kind = key.IsSequence() ? "a list" : key.IsMap() ? "a map" : "empty";
  cx.fail(key, context + "a key must be a plain name, not " + kind);
}

double number(const Ctx& cx, const YAML::Node& v, const std::string& key) {
  return scalar<double>(cx, v, key, "a number");
}

double in_range(const Ctx& cx, const YAML::Node& v, const std::string& key, double lo, double hi,
                bool hi_open, const std::string& range_text) {
  const double x = number(cx, v, key);
  if (!(x >= lo && (hi_open ? x < hi : x <= hi)))
    cx.fail(v, "key '" + key + "' = " + v.Scalar() + " is outside " + range_text);
  return x;
}

double sparsity(const Ctx& cx, const YAML::Node& v, const std::string& key) {
  return in_range(cx, v, key, 0.0, 1.0, true, "[0, 1)");
}

template <typename E>
E choice(const Ctx& cx, const YAML::Node& v, const std::string& key,
         std::initializer_list<std::pair<const char*, E>> options) {
  const std::string s = scalar<std::string>(cx, v, key, "a name");
  std::string names;
  for (const auto& [name, value] : options) {
    if (s == name) return value;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  cx.fail(v, "key '" + key + "': unknown value '" + s + "' (expected one of: " + names + ")");
}

const std::set<std::string> kCommonKeys = {"layers", "start_epoch", "end_epoch"};

const std::set<std::string>& keys_of(ModifierKind k) {
  static const std::set<std::string> prune = {"structure",     "scope",          "norm",
                                              "init_sparsity", "final_sparsity", "sparsity",
                                              "update_every",  "remove",         "block"};
  static const std::set<std::string> sparse = {"method",        "sparsity",     "distribution",
                                               "drop_fraction", "update_every", "epsilon"};
  static const std::set<std::string> quant = {
      "mode",        "weight_bits", "activation_bits",    "activation_momentum",
      "calibration", "percentile",  "calibration_batches"};
  static const std::set<std::string> distill = {"teacher", "teacher_model", "alpha", "temperature"};
  switch (k) {
    case ModifierKind::prune:
      return prune;
    case ModifierKind::sparse_train:
      return sparse;
    case ModifierKind::quantize:
      return quant;
    case ModifierKind::distill:
      return distill;
  }
  return prune;
}

void parse_field(const Ctx& cx, Modifier& m, const std::string& key, const YAML::Node& v) {
  if (key == "layers") {
    m.layers.clear();
    if (v.IsScalar()) {
      m.layers.push_back(v.Scalar());
    } else if (v.IsSequence() && v.size() > 0) {
      for (const auto& item : v) m.layers.push_back(scalar<std::string>(cx, item, key, "a name"));
    } else {
      cx.fail(v, "key 'layers' must be a name, a pattern or a non-empty list of them");
    }
    return;
  }
  if (key == "start_epoch") {
    m.start_epoch = in_range(cx, v, key, 0, 1e9, false, "[0, 1e9]");
    return;
  }
  if (key == "end_epoch") {
    m.end_epoch = in_range(cx, v, key, 0, 1e9, false, "[0, 1e9]");
    return;
  }
  switch (m.kind) {
    case ModifierKind::prune: {
      auto& p = m.prune;
      if (key == "structure")
        p.structure = choice<PruneStructure>(cx, v, key,
                                             {{"unstructured", PruneStructure::unstructured},
                                              {"neurons", PruneStructure::neurons},
                                              {"channels", PruneStructure::neurons},
                                              {"block", PruneStructure::block}});
      else if (key == "scope")
        p.scope = choice<PruneScope>(
            cx, v, key, {{"layer", PruneScope::layer}, {"global", PruneScope::global}});
      else if (key == "norm")
        p.norm = choice<Norm>(cx, v, key, {{"l1", Norm::l1}, {"l2", Norm::l2}});
      else if (key == "init_sparsity")
        p.init_sparsity = sparsity(cx, v, key);
      else if (key == "final_sparsity" || key == "sparsity")
        p.final_sparsity = sparsity(cx, v, key);
      else if (key == "update_every")
        p.update_every = in_range(cx, v, key, 1e-6, 1e9, false, "(0, 1e9]");
      else if (key == "remove")
        p.remove = scalar<bool>(cx, v, key, "true or false");
      else if (key == "block") {
        if (!v.IsSequence() || v.size() != 2)
          cx.fail(v, "key 'block' must be a list of two sizes [rows, cols]");
        p.block_rows =
            static_cast<std::int64_t>(in_range(cx, v[0], key, 1, 65536, false, "[1, 65536]"));
        p.block_cols =
            static_cast<std::int64_t>(in_range(cx, v[1], key, 1, 65536, false, "[1, 65536]"));
        if (double(p.block_rows) != number(cx, v[0], key) ||
            double(p.block_cols) != number(cx, v[1], key))
          cx.fail(v, "key 'block' must hold whole numbers");
      }
      break;
    }
    case ModifierKind::sparse_train: {
      auto& s = m.sparse;
      if (key == "method")
        s.method = choice<SparseMethod>(cx, v, key,
                                        {{"rigl", SparseMethod::rigl}, {"set", SparseMethod::set}});
      else if (key == "sparsity")
        s.sparsity = sparsity(cx, v, key);
      else if (key == "distribution")
        s.distribution = choice<Distribution>(cx, v, key,
                                              {{"uniform", Distribution::uniform},
                                               {"er", Distribution::er},
                                               {"erk", Distribution::erk}});
      else if (key == "drop_fraction")
        s.drop_fraction = in_range(cx, v, key, 0, 1, true, "[0, 1)");
      else if (key == "update_every")
        s.update_every = static_cast<int>(in_range(cx, v, key, 1, 1e9, false, "[1, 1e9]"));
      else if (key == "epsilon")
        s.epsilon = in_range(cx, v, key, 1e-9, 1e9, false, "(0, 1e9]");
      break;
    }
    case ModifierKind::quantize: {
      auto& q = m.quant;
      if (key == "mode")
        q.mode = choice<QuantMode>(cx, v, key, {{"qat", QuantMode::qat}, {"ptq", QuantMode::ptq}});
      else if (key == "weight_bits")
        q.weight_bits = static_cast<int>(in_range(cx, v, key, 2, 8, false, "[2, 8]"));
      else if (key == "activation_bits")
        q.activation_bits = static_cast<int>(in_range(cx, v, key, 2, 8, false, "[2, 8]"));
      else if (key == "activation_momentum")
        q.activation_momentum = in_range(cx, v, key, 0, 1, true, "[0, 1)");
      else if (key == "calibration")
        q.calibration = choice<Calibration>(cx, v, key,
                                            {{"minmax", Calibration::minmax},
                                             {"percentile", Calibration::percentile},
                                             {"mse", Calibration::mse}});
      else if (key == "percentile")
        q.percentile = in_range(cx, v, key, 50, 100, false, "[50, 100]");
      else if (key == "calibration_batches")
        q.calibration_batches = static_cast<int>(in_range(cx, v, key, 1, 1e6, false, "[1, 1e6]"));
      break;
    }
    case ModifierKind::distill: {
      auto& d = m.distill;
      if (key == "teacher")
        d.teacher = scalar<std::string>(cx, v, key, "a file name");
      else if (key == "teacher_model")
        d.teacher_model = scalar<std::string>(cx, v, key, "a model name");
      else if (key == "alpha")
        d.alpha = in_range(cx, v, key, 0, 1, false, "[0, 1]");
      else if (key == "temperature")
        d.temperature = in_range(cx, v, key, 1e-3, 1e3, false, "[0.001, 1000]");
      break;
    }
  }
}

Modifier parse_modifier(const Ctx& cx, const YAML::Node& item) {
  if (!item.IsMap() || item.size() != 1)
    cx.fail(item,
            "each modifier must be a map with one key: prune, sparse_train, quantize or "
            "distill");
  const auto it = item.begin();
  const std::string name = key_name(cx, it->first, "");
  Modifier m;
  m.line = it->first.Mark().line + 1;
  if (name == "prune")
    m.kind = ModifierKind::prune;
  else if (name == "sparse_train")
    m.kind = ModifierKind::sparse_train;
  else if (name == "quantize")
    m.kind = ModifierKind::quantize;
  else if (name == "distill")
    m.kind = ModifierKind::distill;
  else
    cx.fail(it->first,
            "unknown modifier '" + name + "' (expected prune, sparse_train, quantize or distill)");
  const YAML::Node body = it->second;
  if (body.IsNull()) return m;
  if (!body.IsMap()) cx.fail(body, "modifier '" + name + "' must be a map of keys");
  const auto& own = keys_of(m.kind);
  for (const auto& kv : body) {
    const std::string key = key_name(cx, kv.first, "modifier '" + name + "': ");
    if (!kCommonKeys.count(key) && !own.count(key)) {
      std::string allowed;
      for (const auto& k : kCommonKeys) allowed += k + ", ";
      for (const auto& k : own) allowed += k + ", ";
      allowed.resize(allowed.size() - 2);
      cx.fail(kv.first, "modifier '" + name + "': unknown key '" + key +
                            "' (expected one of: " + allowed + ")");
    }
    if (m.key_line.count(key))
      cx.fail(kv.first, "modifier '" + name + "': key '" + key + "' given twice");
    m.key_line[key] = kv.first.Mark().line + 1;
    parse_field(cx, m, key, kv.second);
  }
  // Cross-key checks, reported at the later key.
  if (m.end_epoch < m.start_epoch) {
    if (!m.key_line.count("end_epoch"))
      m.end_epoch = m.start_epoch;  // default: one-shot
    else
      cx.fail(body["end_epoch"], "key 'end_epoch' is before start_epoch");
  }
  if (m.kind == ModifierKind::prune && m.prune.init_sparsity > m.prune.final_sparsity)
    cx.fail(body["final_sparsity"] ? body["final_sparsity"] : body,
            "key 'final_sparsity' is below init_sparsity");
  if (m.kind == ModifierKind::prune && m.key_line.count("block") &&
      m.prune.structure != PruneStructure::block)
    cx.fail(body["block"], "key 'block' needs structure: block");
  // Blocks are ranked by L2 norm unless the recipe says otherwise.
  if (m.kind == ModifierKind::prune && m.prune.structure == PruneStructure::block &&
      !m.key_line.count("norm"))
    m.prune.norm = Norm::l2;
  if (m.kind == ModifierKind::distill && m.distill.teacher.empty())
    cx.fail(it->first, "modifier 'distill' needs key 'teacher' (a checkpoint file)");
  if (m.kind == ModifierKind::sparse_train && m.sparse.epsilon &&
      m.sparse.distribution == Distribution::uniform)
    cx.fail(body["epsilon"], "key 'epsilon' needs distribution er or erk");
  return m;
}

}  // namespace

Recipe parse_recipe(std::string_view yaml_text, std::string source_name) {
  Recipe r;
  r.source = std::move(source_name);
  const Ctx cx{r.source};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::ParserException& e) {
    throw Error(r.source + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  if (!root.IsMap()) throw Error(r.source + ":1: a recipe must be a map with key 'modifiers'");
  for (const auto& kv : root) {
    const std::string key = key_name(cx, kv.first, "");
    if (key == "modifiers") {
      if (!kv.second.IsSequence() || kv.second.size() == 0)
        cx.fail(kv.first, "key 'modifiers' must be a non-empty list");
      for (const auto& item : kv.second) r.modifiers.push_back(parse_modifier(cx, item));
    } else if (key == "epochs") {
      r.epochs = static_cast<int>(in_range(cx, kv.second, key, 0, 10000, false, "[0, 10000]"));
    } else if (key == "lr") {
      r.lr = in_range(cx, kv.second, key, 0, 100, false, "[0, 100]");
    } else {
      cx.fail(kv.first, "unknown key '" + key + "' (expected one of: epochs, lr, modifiers)");
    }
  }
  if (r.modifiers.empty()) throw Error(r.source + ":1: recipe has no 'modifiers' list");
  int distills = 0;
  for (const auto& m : r.modifiers)
    if (m.kind == ModifierKind::distill && ++distills > 1)
      throw Error(r.where(m, "teacher") + "only one distill modifier is allowed");
  return r;
}

Recipe load_recipe(const std::filesystem::path& path) {
  return parse_recipe(read_file_text(path), path.string());
}

bool pattern_matches(const std::string& pattern, const std::string& param_name) {
  if (fnmatch(pattern.c_str(), param_name.c_str(), 0) == 0) return true;
  const auto dot = param_name.rfind('.');
  if (dot == std::string::npos) return false;
  return fnmatch(pattern.c_str(), param_name.substr(0, dot).c_str(), 0) == 0;
}

std::vector<std::string> select_layers(const Recipe& r, const Modifier& m,
                                       const std::vector<std::string>& weight_names) {
  std::vector<std::string> out;
  for (const auto& pattern : m.layers) {
    bool any = false;
    for (const auto& name : weight_names) {
      if (!pattern_matches(pattern, name)) continue;
      any = true;
      if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    }
    if (!any) {
      std::string have;
      for (const auto& n : weight_names) have += (have.empty() ? "" : ", ") + n;
      throw Error(r.where(m, "layers") + "modifier '" + modifier_name(m.kind) +
                  "': key 'layers': pattern '" + pattern + "' matches no layer (layers: " + have +
                  ")");
    }
  }
  // Keep the model's order, whatever the order of the patterns.
  std::vector<std::string> ordered;
  for (const auto& name : weight_names)
    if (std::find(out.begin(), out.end(), name) != out.end()) ordered.push_back(name);
  return ordered;
}

}  // namespace verdant::compress
