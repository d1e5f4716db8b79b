#include "verdant/train/model_source.hpp"

#include <algorithm>
#include <filesystem>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/interop/onnx_import.hpp"
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
         spec.ends_with(".vckpt") || spec.ends_with(".onnx");
}

LoadedModel from_onnx(const std::vector<std::uint8_t>& bytes, const std::string& spec) {
  fs::path folder = fs::path(spec).parent_path();
  if (folder.empty()) folder = ".";
  interop::ImportedModel m = interop::import_onnx_bytes(bytes, spec, folder);
  LoadedModel out;
  out.format = ModelFormat::onnx;
  out.model = std::move(m.model);
  out.yaml = std::move(m.yaml);
  out.notes = std::move(m.notes);
  return out;
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
    throw Error(spec + ": neither a checkpoint (.vckpt) nor a YAML model file, nor an ONNX model");
  const std::string text(bytes.begin(), bytes.end());
  try {
    return nn::parse_model_yaml(text, spec);
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.find("invalid YAML") != std::string::npos)
      throw Error(spec +
                  ": neither a checkpoint (.vckpt) nor a YAML model file, nor an ONNX model (" +
                  what + ")");
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
  if (spec.ends_with(".onnx")) return from_onnx(bytes, spec);
  // Protobuf is binary (YAML has no NUL byte), but a tiny ONNX file may have none either.
  const bool binary = std::find(bytes.begin(), bytes.end(), std::uint8_t{0}) != bytes.end();
  if (binary && interop::looks_like_onnx(bytes)) return from_onnx(bytes, spec);
  out.format = ModelFormat::yaml;
  try {
    out.model = parse_yaml_model(bytes, spec);
  } catch (const Error&) {
    if (!binary && interop::looks_like_onnx(bytes)) return from_onnx(bytes, spec);
    throw;
  }
  out.yaml.assign(bytes.begin(), bytes.end());
  return out;
}

ImportReport import_to_checkpoint(const ImportOptions& o) {
  if (o.model.empty()) throw SettingError("model", "model is needed: the ONNX file to import");
  if (o.out.empty()) throw SettingError("out", "out is needed: the checkpoint to write");
  std::error_code ec;
  if (fs::equivalent(o.out, o.model, ec))
    throw SettingError("out", "out " + o.out.string() +
                                  " is the ONNX file itself; write the checkpoint to another file");
  if (fs::is_directory(o.out, ec))
    throw SettingError("out", "out " + o.out.string() + " is a directory, not a checkpoint file");
  check_writable_file(o.out);
  const auto bytes = read_model_file(o.model, "model");
  fs::path folder = fs::path(o.model).parent_path();
  if (folder.empty()) folder = ".";
  interop::ImportedModel m = interop::import_onnx_bytes(bytes, o.model, folder);

  Checkpoint c;
  c.set_meta("verdant.kind", "import");
  c.set_meta("model.spec", o.model);
  c.set_meta("model.yaml", m.yaml);
  c.set_meta("import.opset", std::to_string(m.opset));
  c.set_meta("import.producer", m.producer);
  for (auto& [name, p] : m.model->named_parameters())
    c.tensors.emplace_back("param/" + name, p.value());
  for (auto& [name, b] : m.model->named_buffers()) c.tensors.emplace_back("buffer/" + name, b);
  const auto encoded = encode_checkpoint(c);
  // What eval and train will do with the file, before it exists.
  model_from_checkpoint(decode_checkpoint(encoded, o.out.string()), o.out.string());
  remove_stale_temporaries(o.out);
  write_file_atomic(o.out, std::span<const std::uint8_t>(encoded.data(), encoded.size()));
  return ImportReport{.model = m.model,
                      .opset = m.opset,
                      .producer = m.producer,
                      .notes = m.notes,
                      .bytes = encoded.size()};
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

void check_model_fits(nn::Sequential& model, const DataShape& data, const std::string& origin,
                      const std::string& data_name) {
  const Shape& takes = model.input_shape();
  const bool flattens = model.size() > 0 && model[0]->type_name() == "Flatten";
  if (!takes.empty() && takes != data.sample &&
      !(flattens && shape_numel(takes) == shape_numel(data.sample)))
    throw Error(origin + ": the model takes samples of shape " + shape_str(takes) + ", but " +
                data_name + " has samples of shape " + shape_str(data.sample));
  if (data.classes == 0) return;
  const auto summary = nn::summarize(model, data.sample);
  const Shape out =
      summary.layers.empty() ? summary.input_shape : summary.layers.back().output_shape;
  if (out.size() != 1 || out[0] < data.classes)
    throw Error(origin + ": the model gives outputs of shape " + shape_str(out) + ", but " +
                data_name + " has " + std::to_string(data.classes) + " classes");
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
