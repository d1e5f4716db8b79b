#include "verdant/train/model_source.hpp"

#include <algorithm>
#include <filesystem>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/train/trainer.hpp"

namespace verdant::train {

namespace fs = std::filesystem;

namespace {

bool is_builtin(const std::string& spec) {
  const auto names = nn::model_names();
  return std::find(names.begin(), names.end(), spec) != names.end();
}

// A spec that can only mean a file: it has a directory part or a model-file extension.
bool looks_like_path(const std::string& spec) {
  return spec.find('/') != std::string::npos || spec.ends_with(".yaml") || spec.ends_with(".yml") ||
         spec.ends_with(".vckpt");
}

std::shared_ptr<nn::Sequential> builtin(const std::string& spec, const std::string& setting,
                                        const std::optional<DataShape>& data) {
  try {
    return data ? nn::make_model(spec, data->sample, data->classes) : nn::make_model(spec);
  } catch (const UsageError& e) {
    throw SettingError(setting, setting + ": " + e.what());
  }
}

// A built-in model shaped for other data than Fashion-MNIST is rebuilt from its YAML.
std::string builtin_yaml(nn::Sequential& model, const std::optional<DataShape>& data) {
  const bool fashion_shaped = !data || (data->sample == Shape{1, 28, 28} && data->classes == 10);
  return fashion_shaped ? std::string() : nn::model_yaml(model);
}

std::vector<std::uint8_t> read_model_file(const std::string& spec, const std::string& setting) {
  if (!fs::exists(spec))
    throw SettingError(setting, setting + ": " + spec + ": no such model file");
  if (fs::is_directory(spec))
    throw SettingError(setting, setting + ": " + spec + ": is a directory, not a model file");
  return read_file_bytes(spec);
}

std::shared_ptr<nn::Sequential> parse_yaml_model(const std::vector<std::uint8_t>& bytes,
                                                 const std::string& spec) {
  // YAML is text: a NUL byte means some other binary file.
  if (std::find(bytes.begin(), bytes.end(), std::uint8_t{0}) != bytes.end())
    throw Error(spec + ": neither a checkpoint (.vckpt) nor a YAML model file");
  const std::string text(bytes.begin(), bytes.end());
  try {
    return nn::parse_model_yaml(text, spec);
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.find("invalid YAML") != std::string::npos)
      throw Error(spec + ": neither a checkpoint (.vckpt) nor a YAML model file (" + what + ")");
    throw;
  }
}

}  // namespace

LoadedModel load_model(const std::string& spec, const std::string& setting,
                       const std::optional<DataShape>& data) {
  LoadedModel out;
  // A built-in name, or an unknown one (whose error lists the valid names).
  if ((is_builtin(spec) || !looks_like_path(spec)) && !fs::exists(spec)) {
    out.model = builtin(spec, setting, data);
    out.yaml = builtin_yaml(*out.model, data);
    return out;
  }
  const auto bytes = read_model_file(spec, setting);
  if (has_checkpoint_magic(bytes)) {
    out.format = ModelFormat::checkpoint;
    out.checkpoint = decode_checkpoint(bytes, spec);
    out.model = model_from_checkpoint(*out.checkpoint, spec);
    if (const auto* y = out.checkpoint->find_meta("model.yaml")) out.yaml = *y;
    return out;
  }
  out.format = ModelFormat::yaml;
  out.model = parse_yaml_model(bytes, spec);
  out.yaml.assign(bytes.begin(), bytes.end());
  return out;
}

std::shared_ptr<nn::Sequential> build_model(const std::string& spec, std::string* yaml_text,
                                            const std::string& setting) {
  LoadedModel m = load_model(spec, setting);
  if (m.format == ModelFormat::checkpoint)
    throw SettingError(
        setting, setting + ": " + spec + " is a checkpoint; this needs a model name or YAML file");
  if (yaml_text) *yaml_text = m.yaml;
  return m.model;
}

void check_model_fits(nn::Sequential& model, const DataShape& data, const std::string& spec,
                      const std::string& data_name) {
  const Shape& takes = model.input_shape();
  if (!takes.empty() && takes != data.sample)
    throw SettingError("model", "model " + spec + " takes samples of shape " + shape_str(takes) +
                                    ", the data's (" + data_name + ") are " +
                                    shape_str(data.sample));
  const auto summary = nn::summarize(model, data.sample);
  const Shape out =
      summary.layers.empty() ? summary.input_shape : summary.layers.back().output_shape;
  if (out.size() != 1 || out[0] < data.classes)
    throw SettingError("model", "model " + spec + " gives outputs of shape " + shape_str(out) +
                                    ", the data (" + data_name + ") has " +
                                    std::to_string(data.classes) + " classes");
}

std::vector<std::pair<std::string, std::string>> data_meta(const data::DataSplit& split) {
  std::vector<std::pair<std::string, std::string>> meta;
  if (!split.normalization.empty())
    meta.emplace_back("data.normalization", split.normalization.to_text());
  // Features that are not pixels: an exported model folds their normalization in.
  if (!split.pixels) meta.emplace_back("data.values", "1");
  std::string classes;
  for (const auto& c : split.classes) classes += c + "\n";
  if (!classes.empty()) meta.emplace_back("data.classes", classes);
  return meta;
}

void apply_data_meta(const Checkpoint& ckpt, const std::string& origin, data::DataOptions& data) {
  if (const auto* n = ckpt.find_meta("data.normalization"))
    data.normalization = data::Normalization::from_text(*n, origin);
  if (const auto* c = ckpt.find_meta("data.classes")) {
    data.classes.clear();
    std::size_t start = 0;
    for (std::size_t end; (end = c->find('\n', start)) != std::string::npos; start = end + 1)
      data.classes.push_back(c->substr(start, end - start));
  }
}

std::shared_ptr<nn::Sequential> model_from_checkpoint(const Checkpoint& ckpt,
                                                      const std::string& origin) {
  std::shared_ptr<nn::Sequential> model;
  if (auto* yaml = ckpt.find_meta("model.yaml")) {
    const std::string* spec = ckpt.find_meta("model.spec");
    model = nn::parse_model_yaml(*yaml, spec ? *spec : origin);
  } else if (auto* spec = ckpt.find_meta("model.spec")) {
    try {
      model = nn::make_model(*spec);
    } catch (const Error& e) {
      throw Error(origin + ": checkpoint names model '" + *spec + "': " + e.what());
    }
  } else {
    throw Error(origin + ": checkpoint does not say which model it holds (no 'model.spec' entry)");
  }
  load_model_state(*model, ckpt, origin);
  return model;
}

}  // namespace verdant::train
