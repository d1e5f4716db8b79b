#include "verdant/nn/models.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/nn/layers.hpp"

namespace verdant::nn {

namespace {

std::shared_ptr<Sequential> make_mlp(const Shape& input, std::int64_t classes, Generator& gen) {
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Flatten>());
  m->push_back(std::make_shared<Linear>(shape_numel(input), 300, true, gen));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<Linear>(300, 100, true, gen));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<Linear>(100, classes, true, gen));
  m->set_input_shape(input);
  return m;
}

std::shared_ptr<Sequential> make_lenet5(const Shape& input, std::int64_t classes, Generator& gen) {
  // conv 5, pool 2, conv 5, pool 2: each side shrinks to ((side - 4) / 2 - 4) / 2.
  auto side = [](std::int64_t s) { return ((s - 4) / 2 - 4) / 2; };
  if (input.size() != 3 || side(input[1]) < 1 || side(input[2]) < 1)
    throw UsageError("lenet5 needs images of at least 16x16, [C, H, W]; the data's samples are " +
                     shape_str(input) + " (use mlp, or a YAML model)");
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Conv2d>(input[0], 20, 5, 1, 0, true, gen));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<MaxPool2d>(2));
  m->push_back(std::make_shared<Conv2d>(20, 50, 5, 1, 0, true, gen));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<MaxPool2d>(2));
  m->push_back(std::make_shared<Flatten>());
  m->push_back(std::make_shared<Linear>(50 * side(input[1]) * side(input[2]), 500, true, gen));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<Linear>(500, classes, true, gen));
  m->set_input_shape(input);
  return m;
}

}  // namespace

std::vector<std::string> model_names() {
  return {"mlp", "lenet5"};
}

std::shared_ptr<Sequential> make_model(const std::string& name, Generator& gen) {
  return make_model(name, {1, 28, 28}, 10, gen);
}

std::shared_ptr<Sequential> make_model(const std::string& name, const Shape& input,
                                       std::int64_t classes, Generator& gen) {
  if (classes < 1) throw UsageError("a model needs at least one class");
  if (name == "mlp") return make_mlp(input, classes, gen);
  if (name == "lenet5") return make_lenet5(input, classes, gen);
  std::string valid;
  for (const auto& n : model_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw UsageError("unknown model '" + name + "' (valid: " + valid + ", or a .yaml model file)");
}

// ------------------------------------------------------------------ YAML
namespace {

// What one layer of a YAML model may hold (weights, or per-sample values): far above any model
// this library trains on a CPU, low enough that a corrupt or hostile file (a checkpoint's
// model.yaml too) is refused instead of asking for terabytes or overflowing a size.
constexpr std::int64_t kMaxLayerElements = std::int64_t{1} << 28;

class YamlModelParser {
 public:
  YamlModelParser(std::string origin, Generator& gen) : origin_(std::move(origin)), gen_(gen) {}

  std::shared_ptr<Sequential> parse(const std::string& text) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      throw Error(where(e.mark) + "invalid YAML: " + e.msg);
    }
    if (!root.IsMap())
      throw Error(origin_ + ": a model file must be a map with 'input' and 'layers'");
    for (auto it = root.begin(); it != root.end(); ++it) {
      const std::string key = key_name(it->first);
      if (key != "input" && key != "layers")
        throw Error(where(it->first.Mark()) + "unknown key '" + key + "' (valid: input, layers)");
    }
    const YAML::Node input = root["input"];
    if (!input) throw Error(origin_ + ": missing 'input' (per-sample shape, e.g. [1, 28, 28])");
    if (!input.IsSequence() || input.size() == 0 || input.size() > 3)
      throw Error(where(input.Mark()) + "'input' must be a list of 1 to 3 positive sizes");
    for (const auto& d : input) shape_.push_back(positive(d, "input"));
    if (shape_.size() == 2)
      throw Error(where(input.Mark()) + "'input' must be [features] or [C, H, W]");
    check_size(input.Mark(), "'input'", shape_);

    const YAML::Node layers = root["layers"];
    if (!layers) throw Error(origin_ + ": missing 'layers'");
    if (!layers.IsSequence() || layers.size() == 0)
      throw Error(where(layers.Mark()) + "'layers' must be a non-empty list");

    auto model = std::make_shared<Sequential>();
    model->set_input_shape(shape_);
    for (const auto& item : layers) model->push_back(layer(item));
    return model;
  }

 private:
  std::string where(const YAML::Mark& m) const {
    if (m.is_null()) return origin_ + ": ";
    return origin_ + ":" + std::to_string(m.line + 1) + ": ";
  }

  // A map key as written. yaml-cpp accepts lists and maps as keys, and converting one to a
  // string throws its own "bad conversion" that names no file.
  std::string key_name(const YAML::Node& key) const {
    if (key.IsScalar()) return key.Scalar();
    const char* kind = key.IsSequence() ? "a list" : key.IsMap() ? "a map" : "empty";
    throw Error(where(key.Mark()) + "a key must be a plain name, not " + kind);
  }

  std::int64_t integer(const YAML::Node& n, const std::string& key) const {
    try {
      return n.as<std::int64_t>();
    } catch (const YAML::Exception&) {
      throw Error(where(n.Mark()) + "'" + key + "' must be an integer");
    }
  }
  std::int64_t positive(const YAML::Node& n, const std::string& key) const {
    const std::int64_t v = integer(n, key);
    if (v <= 0)
      throw Error(where(n.Mark()) + "'" + key + "' must be positive, got " + std::to_string(v));
    return v;
  }
  double number(const YAML::Node& n, const std::string& key) const {
    try {
      return n.as<double>();
    } catch (const YAML::Exception&) {
      throw Error(where(n.Mark()) + "'" + key + "' must be a number");
    }
  }
  bool boolean(const YAML::Node& n, const std::string& key) const {
    try {
      return n.as<bool>();
    } catch (const YAML::Exception&) {
      throw Error(where(n.Mark()) + "'" + key + "' must be true or false");
    }
  }

  // Options of one layer: checks that every key is allowed and required ones are present.
  struct Options {
    const YamlModelParser* p;
    YAML::Node node;
    YAML::Mark mark;
    std::optional<YAML::Node> get(const std::string& key) const {
      if (!node.IsDefined() || !node.IsMap()) return std::nullopt;
      const YAML::Node v = node[key];
      if (!v.IsDefined()) return std::nullopt;
      return v;
    }
    std::int64_t required_positive(const std::string& layer, const std::string& key) const {
      const auto v = get(key);
      if (!v) throw Error(p->where(mark) + layer + " needs '" + key + "'");
      return p->positive(*v, key);
    }
    std::int64_t positive_or(const std::string& key, std::int64_t def) const {
      const auto v = get(key);
      return v ? p->positive(*v, key) : def;
    }
    std::int64_t non_negative_or(const std::string& key, std::int64_t def) const {
      const auto v = get(key);
      if (!v) return def;
      const std::int64_t x = p->integer(*v, key);
      if (x < 0) throw Error(p->where(v->Mark()) + "'" + key + "' must not be negative");
      return x;
    }
    double number_or(const std::string& key, double def) const {
      const auto v = get(key);
      return v ? p->number(*v, key) : def;
    }
    bool bool_or(const std::string& key, bool def) const {
      const auto v = get(key);
      return v ? p->boolean(*v, key) : def;
    }
  };

  Options options(const std::string& type, const YAML::Node& value, const YAML::Mark& mark,
                  const std::set<std::string>& allowed) const {
    if (value.IsDefined() && !value.IsNull() && !value.IsMap())
      throw Error(where(value.Mark()) + "options of '" + type + "' must be a map");
    if (value.IsDefined() && value.IsMap()) {
      for (auto it = value.begin(); it != value.end(); ++it) {
        const std::string key = key_name(it->first);
        if (!allowed.count(key)) {
          std::string valid;
          for (const auto& a : allowed) valid += (valid.empty() ? "" : ", ") + a;
          throw Error(where(it->first.Mark()) + "unknown key '" + key + "' for " + type +
                      (valid.empty() ? " (it takes no options)" : " (valid: " + valid + ")"));
        }
      }
    }
    return Options{this, value, mark};
  }

  std::string shape_text() const { return shape_str(shape_); }

  // Refuses `what` when the product of `dims` exceeds kMaxLayerElements (overflow-safe).
  void check_size(const YAML::Mark& mark, const std::string& what,
                  const std::vector<std::int64_t>& dims) const {
    std::int64_t n = 1;
    for (const std::int64_t d : dims) {
      if (d > kMaxLayerElements || (d > 0 && n > kMaxLayerElements / d))
        throw Error(where(mark) + what + " would hold more than " +
                    std::to_string(kMaxLayerElements) + " values per layer, this library's limit");
      n *= d;
    }
  }

  ModulePtr layer(const YAML::Node& item) {
    std::string type;
    YAML::Node value;
    const YAML::Mark mark = item.Mark();
    if (item.IsScalar()) {
      type = item.as<std::string>();
    } else if (item.IsMap() && item.size() == 1) {
      type = key_name(item.begin()->first);
      value = item.begin()->second;
    } else {
      throw Error(
          where(mark) +
          "a layer must be a name or a map with one key, e.g. 'linear: {out_features: 10}'");
    }
    auto need_image = [&] {
      if (shape_.size() != 3)
        throw Error(where(mark) + type + " needs a [C, H, W] input, but the shape here is " +
                    shape_text());
    };
    if (type == "conv2d") {
      need_image();
      Options o =
          options(type, value, mark,
                  {"out_channels", "kernel", "stride", "padding", "bias", "groups", "dilation"});
      Conv2dOptions c{shape_[0], o.required_positive(type, "out_channels"),
                      o.required_positive(type, "kernel")};
      c.stride = o.positive_or("stride", 1);
      c.padding = o.non_negative_or("padding", 0);
      c.bias = o.bool_or("bias", true);
      c.groups = o.positive_or("groups", 1);
      c.dilation = o.positive_or("dilation", 1);
      if (c.in_channels % c.groups || c.out_channels % c.groups)
        throw Error(where(mark) + "conv2d groups " + std::to_string(c.groups) +
                    " must divide both the input channels (" + std::to_string(c.in_channels) +
                    ") and out_channels (" + std::to_string(c.out_channels) + ")");
      check_size(mark, "conv2d's weights",
                 {c.out_channels, c.in_channels / c.groups, c.kernel, c.kernel});
      check_size(mark, "conv2d's padding", {c.padding});
      check_size(mark, "conv2d's dilated kernel", {c.dilation, c.kernel});
      const std::int64_t span = c.dilation * (c.kernel - 1) + 1;
      const std::int64_t oh = (shape_[1] + 2 * c.padding - span) / c.stride + 1;
      const std::int64_t ow = (shape_[2] + 2 * c.padding - span) / c.stride + 1;
      if (shape_[1] + 2 * c.padding < span || shape_[2] + 2 * c.padding < span)
        throw Error(where(mark) + "conv2d kernel " + std::to_string(c.kernel) +
                    (c.dilation > 1 ? " (dilation " + std::to_string(c.dilation) + ")" : "") +
                    " is larger than the input " + shape_text());
      check_size(mark, "conv2d's output", {c.out_channels, oh, ow});
      shape_ = {c.out_channels, oh, ow};
      return std::make_shared<Conv2d>(c, gen_);
    }
    if (type == "maxpool2d" || type == "avgpool2d") {
      need_image();
      Options o = options(type, value, mark, {"kernel", "stride", "padding"});
      const std::int64_t k = o.required_positive(type, "kernel");
      const std::int64_t s = o.positive_or("stride", k);
      const std::int64_t pad = o.non_negative_or("padding", 0);
      for (const std::int64_t v : {k, s, pad}) check_size(mark, type + "'s kernel", {v});
      if (2 * pad > k) throw Error(where(mark) + type + " padding must be at most half the kernel");
      if (shape_[1] + 2 * pad < k || shape_[2] + 2 * pad < k)
        throw Error(where(mark) + type + " kernel " + std::to_string(k) +
                    " is larger than the input " + shape_text());
      shape_ = {shape_[0], (shape_[1] + 2 * pad - k) / s + 1, (shape_[2] + 2 * pad - k) / s + 1};
      if (type == "maxpool2d") return std::make_shared<MaxPool2d>(k, s, pad);
      return std::make_shared<AvgPool2d>(k, s, pad);
    }
    if (type == "linear") {
      Options o = options(type, value, mark, {"out_features", "bias"});
      if (shape_.size() != 1)
        throw Error(where(mark) + "linear needs a flat input, but the shape here is " +
                    shape_text() + " (add 'flatten' before it)");
      const std::int64_t out = o.required_positive(type, "out_features");
      check_size(mark, "linear's weights", {shape_[0], out});
      auto l = std::make_shared<Linear>(shape_[0], out, o.bool_or("bias", true), gen_);
      shape_ = {out};
      return l;
    }
    if (type == "batchnorm1d" || type == "batchnorm2d") {
      Options o = options(type, value, mark, {"eps", "momentum"});
      const bool two = type == "batchnorm2d";
      if (two) need_image();
      if (!two && shape_.size() != 1)
        throw Error(where(mark) + "batchnorm1d needs a flat input, but the shape here is " +
                    shape_text());
      const float eps = static_cast<float>(o.number_or("eps", 1e-5));
      const float mom = static_cast<float>(o.number_or("momentum", 0.1));
      if (!(eps > 0) || !(mom >= 0 && mom <= 1))
        throw Error(where(mark) + type + " needs eps > 0 and momentum in [0, 1]");
      if (two) return std::make_shared<BatchNorm2d>(shape_[0], eps, mom);
      return std::make_shared<BatchNorm1d>(shape_[0], eps, mom);
    }
    if (type == "dropout") {
      Options o = options(type, value, mark, {"p"});
      const double p = o.number_or("p", 0.5);
      if (!(p >= 0 && p <= 1)) throw Error(where(mark) + "dropout 'p' must be in [0, 1]");
      return std::make_shared<Dropout>(static_cast<float>(p), gen_);
    }
    if (type == "flatten") {
      options(type, value, mark, {});
      std::int64_t n = 1;
      for (auto d : shape_) n *= d;
      shape_ = {n};
      return std::make_shared<Flatten>();
    }
    if (type == "relu" || type == "tanh" || type == "sigmoid" || type == "gelu") {
      options(type, value, mark, {});
      if (type == "relu") return std::make_shared<ReLU>();
      if (type == "tanh") return std::make_shared<Tanh>();
      if (type == "sigmoid") return std::make_shared<Sigmoid>();
      return std::make_shared<GELU>();
    }
    if (type == "leakyrelu") {
      Options o = options(type, value, mark, {"negative_slope"});
      const double slope = o.number_or("negative_slope", 0.01);
      if (!std::isfinite(slope))
        throw Error(where(mark) + "leakyrelu 'negative_slope' must be a finite number");
      return std::make_shared<LeakyReLU>(static_cast<float>(slope));
    }
    if (type == "softmax" || type == "logsoftmax") {
      options(type, value, mark, {});
      if (shape_.size() != 1)
        throw Error(where(mark) + type + " needs a flat input, but the shape here is " +
                    shape_text());
      if (type == "softmax") return std::make_shared<Softmax>();
      return std::make_shared<LogSoftmax>();
    }
    throw Error(
        where(mark) + "unknown layer '" + type +
        "' (valid: conv2d, maxpool2d, avgpool2d, linear, batchnorm1d, batchnorm2d, dropout, "
        "flatten, relu, leakyrelu, tanh, sigmoid, gelu, softmax, logsoftmax)");
  }

  std::string origin_;
  Generator& gen_;
  Shape shape_;
};

}  // namespace

std::shared_ptr<Sequential> parse_model_yaml(const std::string& text, const std::string& origin,
                                             Generator& gen) {
  return YamlModelParser(origin, gen).parse(text);
}

std::shared_ptr<Sequential> load_model_yaml(const std::filesystem::path& path, Generator& gen) {
  return parse_model_yaml(read_file_text(path), path.string(), gen);
}

std::shared_ptr<Sequential> load_model(const std::string& name_or_path, Generator& gen) {
  const std::filesystem::path p(name_or_path);
  const std::string ext = p.extension().string();
  if (ext == ".yaml" || ext == ".yml" || name_or_path.find('/') != std::string::npos)
    return load_model_yaml(p, gen);
  return make_model(name_or_path, gen);
}

std::string model_yaml(const Sequential& model,
                       const std::map<std::string, std::int64_t>& out_features) {
  std::ostringstream y;
  const Shape& in = model.input_shape();
  if (in.empty()) throw Error("model YAML: the model has no known input shape");
  y << "input: [";
  for (std::size_t i = 0; i < in.size(); ++i) y << (i ? ", " : "") << in[i];
  y << "]\nlayers:\n";
  for (const auto& entry : model.named_children()) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
    const std::string& name = entry.first;
    const ModulePtr& child = entry.second;
    auto out = [&](std::int64_t n) {
      auto it = out_features.find(name);
      return it == out_features.end() ? n : it->second;
    };
    const Module* m = child.get();
    if (auto* l = dynamic_cast<const Linear*>(m)) {
      y << "  - linear: {out_features: " << out(l->out_features())
        << ", bias: " << (l->has_bias() ? "true" : "false") << "}\n";
    } else if (auto* c = dynamic_cast<const Conv2d*>(m)) {
      const auto& o = c->options();
      y << "  - conv2d: {out_channels: " << out(o.out_channels) << ", kernel: " << o.kernel
        << ", stride: " << o.stride << ", padding: " << o.padding
        << ", bias: " << (o.bias ? "true" : "false");
      if (o.groups != 1) y << ", groups: " << o.groups;
      if (o.dilation != 1) y << ", dilation: " << o.dilation;
      y << "}\n";
    } else if (auto* p = dynamic_cast<const MaxPool2d*>(m)) {
      y << "  - maxpool2d: {kernel: " << p->kernel() << ", stride: " << p->stride()
        << ", padding: " << p->padding() << "}\n";
    } else if (auto* a = dynamic_cast<const AvgPool2d*>(m)) {
      y << "  - avgpool2d: {kernel: " << a->kernel() << ", stride: " << a->stride()
        << ", padding: " << a->padding() << "}\n";
    } else if (auto* d = dynamic_cast<const Dropout*>(m)) {
      y << "  - dropout: {p: " << d->p() << "}\n";
    } else if (auto* b = dynamic_cast<const BatchNorm*>(m)) {
      y << "  - " << (b->type_name() == "BatchNorm2d" ? "batchnorm2d" : "batchnorm1d")
        << ": {eps: " << b->eps() << ", momentum: " << b->momentum() << "}\n";
    } else if (auto* lr = dynamic_cast<const LeakyReLU*>(m)) {
      char slope[32];
      std::snprintf(slope, sizeof slope, "%.9g", static_cast<double>(lr->negative_slope()));
      y << "  - leakyrelu: {negative_slope: " << slope << "}\n";
    } else if (auto* f = dynamic_cast<const Flatten*>(m)) {
      if (f->start_dim() != 1)
        throw Error("model YAML: Flatten with start_dim != 1 cannot be written");
      y << "  - flatten\n";
    } else {
      std::string t = m->type_name();
      std::transform(t.begin(), t.end(), t.begin(),
                     [](unsigned char ch) { return std::tolower(ch); });
      if (t != "relu" && t != "tanh" && t != "sigmoid" && t != "gelu" && t != "softmax" &&
          t != "logsoftmax")
        throw Error("model YAML: layer " + name + " (" + m->type_name() + ") cannot be rebuilt");
      y << "  - " << t << "\n";
    }
  }
  return y.str();
}

std::shared_ptr<Sequential> fold_batch_norm(const Sequential& model) {
  auto out = std::make_shared<Sequential>();
  out->set_input_shape(model.input_shape());
  const auto& kids = model.named_children();
  for (std::size_t i = 0; i < kids.size(); ++i) {
    auto* bn = i + 1 < kids.size() ? dynamic_cast<BatchNorm*>(kids[i + 1].second.get()) : nullptr;
    auto* lin = dynamic_cast<Linear*>(kids[i].second.get());
    auto* conv = dynamic_cast<Conv2d*>(kids[i].second.get());
    const bool fits =
        bn &&
        ((lin && bn->type_name() == "BatchNorm1d" && bn->num_features() == lin->out_features()) ||
         (conv && bn->type_name() == "BatchNorm2d" &&
          bn->num_features() == conv->options().out_channels));
    if (!fits) {
      out->push_back(kids[i].first, kids[i].second);
      continue;
    }
    std::shared_ptr<Module> folded;
    Variable w, b;
    const Variable* old_b = nullptr;
    const Variable* old_w = nullptr;
    if (lin) {
      auto l = std::make_shared<Linear>(lin->in_features(), lin->out_features(), true);
      w = l->weight(), b = l->bias(), old_w = &lin->weight();
      if (lin->has_bias()) old_b = &lin->bias();
      folded = l;
    } else {
      Conv2dOptions o = conv->options();
      o.bias = true;
      auto c = std::make_shared<Conv2d>(o);
      w = c->weight(), b = c->bias(), old_w = &conv->weight();
      if (conv->options().bias) old_b = &conv->bias();
      folded = c;
    }
    const std::int64_t channels = bn->num_features(), per = old_w->numel() / channels;
    const float* src = old_w->value().data<float>();
    float* dst = w.value().data<float>();
    float* bias = b.value().data<float>();
    const float* gamma = bn->weight().value().data<float>();
    const float* beta = bn->bias().value().data<float>();
    const float* mean = bn->running_mean().data<float>();
    const float* var = bn->running_var().data<float>();
    for (std::int64_t c = 0; c < channels; ++c) {
      const double g = gamma[c] / std::sqrt(static_cast<double>(var[c]) + bn->eps());
      for (std::int64_t k = 0; k < per; ++k)
        dst[c * per + k] = static_cast<float>(src[c * per + k] * g);
      const double b0 = old_b ? old_b->value().data<float>()[c] : 0.0;
      bias[c] = static_cast<float>((b0 - mean[c]) * g + beta[c]);
    }
    out->push_back(kids[i].first, folded);
    ++i;  // the BatchNorm is gone
  }
  return out;
}

// ------------------------------------------------------------------ summary
ModelSummary summarize(Sequential& model, Shape input_shape) {
  ModelSummary s;
  s.input_shape = input_shape.empty() ? model.input_shape() : std::move(input_shape);
  if (s.input_shape.empty()) throw Error("summary: the model's input shape is unknown");
  const bool was_training = model.is_training();
  model.eval();  // batch of one: batch-norm must use running statistics
  NoGradGuard no_grad;
  Shape batched{1};
  batched.insert(batched.end(), s.input_shape.begin(), s.input_shape.end());
  Variable h(Tensor::zeros(batched));
  try {
    for (const auto& [name, layer] : model.named_children()) {
      const Shape in(h.shape().begin() + 1, h.shape().end());
      h = layer->forward(h);
      LayerSummary l;
      l.name = name;
      l.type = layer->type_name();
      l.details = layer->describe();
      l.output_shape = Shape(h.shape().begin() + 1, h.shape().end());
      l.parameters = layer->num_parameters();
      const std::int64_t out_n = shape_numel(l.output_shape);
      if (auto* lin = dynamic_cast<Linear*>(layer.get())) {
        l.flops = 2 * lin->in_features() * lin->out_features();
      } else if (auto* conv = dynamic_cast<Conv2d*>(layer.get())) {
        const auto& o = conv->options();
        l.flops = 2 * (o.in_channels / o.groups) * o.kernel * o.kernel * out_n;
      } else if (auto* mp = dynamic_cast<MaxPool2d*>(layer.get())) {
        l.flops = mp->kernel() * mp->kernel() * out_n;
      } else if (auto* ap = dynamic_cast<AvgPool2d*>(layer.get())) {
        l.flops = ap->kernel() * ap->kernel() * out_n;
      } else if (dynamic_cast<BatchNorm*>(layer.get())) {
        l.flops = 2 * out_n;
      } else if (l.type == "ReLU" || l.type == "LeakyReLU" || l.type == "Tanh" ||
                 l.type == "Sigmoid" || l.type == "GELU" || l.type == "Softmax" ||
                 l.type == "LogSoftmax") {
        l.flops = out_n;
      }
      s.total_parameters += l.parameters;
      s.total_flops += l.flops;
      s.layers.push_back(std::move(l));
    }
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return s;
}

namespace {
std::string grouped(std::int64_t v) {
  std::string d = std::to_string(v), out;
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return out;
}
}  // namespace

std::string format_summary(const ModelSummary& s) {
  std::vector<std::array<std::string, 5>> rows;
  rows.push_back({"layer", "type", "output", "params", "FLOPs"});
  rows.push_back({"input", "", shape_str(s.input_shape), "", ""});
  for (const auto& l : s.layers)
    rows.push_back({l.name, l.type + (l.details.empty() ? "" : "(" + l.details + ")"),
                    shape_str(l.output_shape), grouped(l.parameters), grouped(l.flops)});
  rows.push_back({"total", "", "", grouped(s.total_parameters), grouped(s.total_flops)});
  std::array<std::size_t, 5> w{};
  for (const auto& r : rows)
    for (std::size_t c = 0; c < 5; ++c) w[c] = std::max(w[c], r[c].size());
  std::string out;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i == rows.size() - 1) {
      std::size_t total = 0;
      for (auto x : w) total += x + 2;
      out += std::string(total - 2, '-') + "\n";
    }
    for (std::size_t c = 0; c < 5; ++c) {
      const std::string& cell = rows[i][c];
      const bool right = c >= 3;
      const std::string pad(w[c] - cell.size(), ' ');
      out += right ? pad + cell : cell + pad;
      if (c < 4) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += "\n";
  }
  out += "FLOPs: forward pass, per sample (a multiply-add counts as 2)\n";
  return out;
}

}  // namespace verdant::nn
