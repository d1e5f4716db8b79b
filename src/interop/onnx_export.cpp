// nn::Sequential -> ONNX ModelProto, one operator (or a few) per layer.
#include "verdant/interop/onnx_export.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>

#include "onnx_common.hpp"
#include "verdant/core/error.hpp"
#include "verdant/interop/onnx_import.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/version.hpp"

namespace verdant::interop {

namespace {

bool is_weight_layer(const nn::Module& m) {
  return dynamic_cast<const nn::Linear*>(&m) || dynamic_cast<const nn::Conv2d*>(&m);
}

class Exporter {
 public:
  Exporter(nn::Sequential& model, const OnnxExportOptions& o) : model_(model), o_(o) {}

  onnx::ModelProto build() {
    if (o_.opset < detail::kMinOpset || o_.opset > detail::kMaxOpset)
      throw Error("ONNX export: opset " + std::to_string(o_.opset) + " is not in [" +
                  std::to_string(detail::kMinOpset) + ", " + std::to_string(detail::kMaxOpset) +
                  "]");
    if (int8() && o_.opset < 13)
      throw Error("ONNX export: int8 QDQ needs opset 13 (per-channel DequantizeLinear)");
    const Shape& in = model_.input_shape();
    if (in.size() != 1 && in.size() != 3)
      throw Error("ONNX export: the model has no input shape ([C, H, W] or [features])");
    std::size_t weight_layers = 0;
    for (const auto& [name, m] : model_.named_children()) weight_layers += is_weight_layer(*m);
    if (int8() && o_.int8.size() != weight_layers)
      throw Error("ONNX export: " + std::to_string(o_.int8.size()) +
                  " int8 layer descriptions for a model with " + std::to_string(weight_layers) +
                  " Linear/Conv2d layers");

    proto_.set_ir_version(onnx::IR_VERSION < 8 ? onnx::IR_VERSION : 8);
    proto_.set_producer_name("verdant");
    proto_.set_producer_version(kVersion);
    auto* op = proto_.add_opset_import();
    op->set_domain("");
    op->set_version(o_.opset);
    for (const auto& [k, v] : o_.metadata) {
      auto* e = proto_.add_metadata_props();
      e->set_key(k);
      e->set_value(v);
    }
    g_ = proto_.mutable_graph();
    g_->set_name(o_.name.empty() ? "verdant" : o_.name);
    value_info(g_->add_input(), "input", in);

    std::string cur = "input";
    std::size_t site = 0;
    const auto& kids = model_.named_children();
    for (std::size_t i = 0; i < kids.size(); ++i) {
      const std::string& child = kids[i].first;
      nn::Module& m = *kids[i].second;
      const std::string type = m.type_name();
      const std::string out = "/" + child + "/" + type;
      if (int8() && (is_weight_layer(m) || type == "AvgPool2d")) {
        // Activations enter each weight layer quantized; average pooling also runs on the
        // quantized values (the runtime pools u8 and rounds), with the next layer's parameters.
        if (site < o_.int8.size()) cur = qdq(cur, child, o_.int8[site].input);
      }
      if (auto* lin = dynamic_cast<nn::Linear*>(&m)) {
        cur = linear(cur, out, child, *lin, site++);
      } else if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
        cur = convolution(cur, out, child, *conv, site++);
      } else if (auto* mp = dynamic_cast<nn::MaxPool2d*>(&m)) {
        cur = pool("MaxPool", cur, out, mp->kernel(), mp->stride(), mp->padding());
      } else if (auto* ap = dynamic_cast<nn::AvgPool2d*>(&m)) {
        cur = pool("AveragePool", cur, out, ap->kernel(), ap->stride(), ap->padding());
      } else if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) {
        if (int8())
          throw Error("ONNX export: layer " + child + " (" + type +
                      "): fold BatchNorm into the layer before it for int8");
        cur = batch_norm(cur, out, child, *bn);
      } else if (auto* lr = dynamic_cast<nn::LeakyReLU*>(&m)) {
        auto* n = node("LeakyRelu", {cur}, out);
        attr(n, "alpha", lr->negative_slope());
        cur = out;
      } else if (type == "ReLU" || type == "Sigmoid" || type == "Tanh") {
        node(type == "ReLU" ? "Relu" : type, {cur}, out);
        cur = out;
      } else if (type == "Softmax" || type == "LogSoftmax") {
        attr(node(type, {cur}, out), "axis", std::int64_t{1});
        cur = out;
      } else if (type == "GELU") {
        cur = gelu(cur, out, child);
      } else if (type == "Flatten") {
        attr(node("Flatten", {cur}, out), "axis", std::int64_t{1});
        cur = out;
      } else if (type == "Dropout") {
        // identity at inference
      } else {
        throw Error("ONNX export: layer " + child + " (" + type + ") has no ONNX mapping");
      }
    }
    if (cur == "input") node("Identity", {cur}, "/identity");
    rename_output(cur, "logits");
    const auto summary = nn::summarize(model_);
    value_info(g_->add_output(), "logits",
               summary.layers.empty() ? in : summary.layers.back().output_shape);
    return proto_;
  }

 private:
  bool int8() const { return !o_.int8.empty(); }

  void value_info(onnx::ValueInfoProto* v, const std::string& name, const Shape& sample) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    auto* s = t->mutable_shape();
    s->add_dim()->set_dim_param("N");
    for (auto d : sample) s->add_dim()->set_dim_value(d);
  }

  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::string& output) {
    auto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(output);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(output);
    return n;
  }
  static void attr(onnx::NodeProto* n, const char* name, std::int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* n, const char* name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto* n, const char* name, std::vector<std::int64_t> v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }

  template <typename T>
  void initializer(const std::string& name, int type, const std::vector<std::int64_t>& dims,
                   const T* data, std::size_t n) {
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (auto d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(data), n * sizeof(T)));
  }
  void floats(const std::string& name, const Shape& dims, const float* data) {
    initializer(name, onnx::TensorProto::FLOAT, dims, data,
                static_cast<std::size_t>(shape_numel(dims)));
  }
  void scalar(const std::string& name, float v) {
    initializer(name, onnx::TensorProto::FLOAT, {}, &v, 1);
  }

  // QuantizeLinear -> DequantizeLinear of activation `x` (uint8, per tensor).
  std::string qdq(const std::string& x, const std::string& child, const QdqActivation& a) {
    if (!(a.scale > 0.f) || !std::isfinite(a.scale) || a.zero_point < 0 || a.zero_point > 255)
      throw Error("ONNX export: layer " + child + ": activation quantization (scale " +
                  std::to_string(a.scale) + ", zero point " + std::to_string(a.zero_point) +
                  ") is not valid");
    const std::string base = "/" + child + "/input_quant";
    const std::string s = base + ".scale", z = base + ".zero_point";
    if (!qdq_made_.count(base)) {
      scalar(s, a.scale);
      const auto zp = static_cast<std::uint8_t>(a.zero_point);
      initializer(z, onnx::TensorProto::UINT8, {}, &zp, 1);
    }
    const std::string tag = base + "_" + std::to_string(qdq_made_[base]++);
    node("QuantizeLinear", {x, s, z}, tag + "/q");
    node("DequantizeLinear", {tag + "/q", s, z}, tag + "/dq");
    return tag + "/dq";
  }

  // The weight (and bias) as the operator's inputs: initializers (fp32), or int8 / int32
  // initializers through per-channel DequantizeLinear (QDQ).
  std::vector<std::string> weights(const std::string& child, nn::Variable& w, nn::Variable* b,
                                   std::size_t site) {
    const std::string wn = child + ".weight", bn = child + ".bias";
    const Shape& ws = w.shape();
    const std::int64_t rows = ws[0], k = w.numel() / rows;
    if (!int8()) {
      floats(wn, ws, w.value().data<float>());
      if (b) floats(bn, b->shape(), b->value().data<float>());
      return b ? std::vector<std::string>{wn, bn} : std::vector<std::string>{wn};
    }
    const QdqLayer& q = o_.int8[site];
    std::vector<float> scale = q.weight_scale;
    const float* wv = w.value().data<float>();
    if (scale.empty()) {  // max|w| / 127 per row; an all-zero row borrows the largest scale
      float top = 0.f;
      for (std::int64_t r = 0; r < rows; ++r) {
        float m = 0.f;
        for (std::int64_t i = 0; i < k; ++i) m = std::max(m, std::abs(wv[r * k + i]));
        scale.push_back(m / 127.f);
        top = std::max(top, m / 127.f);
      }
      for (auto& s : scale)
        if (s == 0.f) s = top > 0.f ? top : 1.f / 127.f;
    }
    if (static_cast<std::int64_t>(scale.size()) != rows)
      throw Error("ONNX export: layer " + child + ": " + std::to_string(scale.size()) +
                  " weight scales for " + std::to_string(rows) + " output channels");
    std::vector<std::int8_t> wq(static_cast<std::size_t>(w.numel()));
    for (std::int64_t r = 0; r < rows; ++r) {
      if (!(scale[r] > 0.f) || !std::isfinite(scale[r]))
        throw Error("ONNX export: layer " + child + ": weight scale " + std::to_string(r) +
                    " is not positive");
      for (std::int64_t i = 0; i < k; ++i)
        wq[r * k + i] = static_cast<std::int8_t>(
            std::clamp<long>(std::lround(wv[r * k + i] / scale[r]), -127, 127));
    }
    const std::vector<std::int8_t> wzero(static_cast<std::size_t>(rows), 0);
    initializer(wn + "_quantized", onnx::TensorProto::INT8, ws, wq.data(), wq.size());
    initializer(wn + "_scale", onnx::TensorProto::FLOAT, {rows}, scale.data(), scale.size());
    initializer(wn + "_zero_point", onnx::TensorProto::INT8, {rows}, wzero.data(), wzero.size());
    attr(node("DequantizeLinear", {wn + "_quantized", wn + "_scale", wn + "_zero_point"}, wn),
         "axis", std::int64_t{0});
    if (!b) return {wn};
    // Bias in units of input scale x weight scale, like the integer accumulator.
    std::vector<std::int32_t> bq(static_cast<std::size_t>(rows));
    std::vector<float> bscale(static_cast<std::size_t>(rows));
    const std::vector<std::int32_t> bzero(static_cast<std::size_t>(rows), 0);
    for (std::int64_t r = 0; r < rows; ++r) {
      const double s = double{q.input.scale} * scale[r];
      bscale[r] = static_cast<float>(s);
      bq[r] = static_cast<std::int32_t>(std::clamp<double>(
          std::nearbyint(b->value().data<float>()[r] / s), std::numeric_limits<std::int32_t>::min(),
          std::numeric_limits<std::int32_t>::max()));
    }
    initializer(bn + "_quantized", onnx::TensorProto::INT32, {rows}, bq.data(), bq.size());
    initializer(bn + "_scale", onnx::TensorProto::FLOAT, {rows}, bscale.data(), bscale.size());
    initializer(bn + "_zero_point", onnx::TensorProto::INT32, {rows}, bzero.data(), bzero.size());
    attr(node("DequantizeLinear", {bn + "_quantized", bn + "_scale", bn + "_zero_point"}, bn),
         "axis", std::int64_t{0});
    return {wn, bn};
  }

  std::string linear(const std::string& x, const std::string& out, const std::string& child,
                     nn::Linear& l, std::size_t site) {
    auto in = weights(child, l.weight(), l.has_bias() ? &l.bias() : nullptr, site);
    in.insert(in.begin(), x);
    attr(node("Gemm", in, out), "transB", std::int64_t{1});
    return out;
  }

  std::string convolution(const std::string& x, const std::string& out, const std::string& child,
                          nn::Conv2d& c, std::size_t site) {
    const auto& o = c.options();
    auto in = weights(child, c.weight(), o.bias ? &c.bias() : nullptr, site);
    in.insert(in.begin(), x);
    auto* n = node("Conv", in, out);
    attr(n, "kernel_shape", {o.kernel, o.kernel});
    attr(n, "strides", {o.stride, o.stride});
    attr(n, "pads", {o.padding, o.padding, o.padding, o.padding});
    attr(n, "dilations", {o.dilation, o.dilation});
    attr(n, "group", o.groups);
    return out;
  }

  std::string pool(const char* op, const std::string& x, const std::string& out, std::int64_t k,
                   std::int64_t s, std::int64_t p) {
    std::string in = x;
    if (std::string(op) == "AveragePool" && p > 0) {
      // Verdant's (and PyTorch's default) average pooling counts padded cells as zeros. An
      // explicit zero Pad says so to every runtime (OpenCV 4.6 ignores count_include_pad), as
      // torch.onnx.export writes it.
      const std::vector<std::int64_t> pads{0, 0, p, p, 0, 0, p, p};
      initializer(out + "/pads", onnx::TensorProto::INT64, {8}, pads.data(), pads.size());
      node("Pad", {x, out + "/pads"}, out + "/pad");
      in = out + "/pad";
      p = 0;
    }
    auto* n = node(op, {in}, out);
    attr(n, "kernel_shape", {k, k});
    attr(n, "strides", {s, s});
    attr(n, "pads", {p, p, p, p});
    return out;
  }

  std::string batch_norm(const std::string& x, const std::string& out, const std::string& child,
                         nn::BatchNorm& b) {
    const Shape c{b.num_features()};
    floats(child + ".weight", c, b.weight().value().data<float>());
    floats(child + ".bias", c, b.bias().value().data<float>());
    floats(child + ".running_mean", c, b.running_mean().data<float>());
    floats(child + ".running_var", c, b.running_var().data<float>());
    auto* n = node(
        "BatchNormalization",
        {x, child + ".weight", child + ".bias", child + ".running_mean", child + ".running_var"},
        out);
    attr(n, "epsilon", b.eps());
    attr(n, "momentum", 1.f - b.momentum());  // ONNX weighs the running value
    return out;
  }

  // x * 0.5 * (1 + erf(x / sqrt 2)): Gelu is an operator only from opset 20.
  std::string gelu(const std::string& x, const std::string& out, const std::string& child) {
    const std::string c = "/" + child + "/gelu";
    scalar(c + ".sqrt2", std::numbers::sqrt2_v<float>);
    scalar(c + ".one", 1.f);
    scalar(c + ".half", 0.5f);
    node("Div", {x, c + ".sqrt2"}, c + "/div");
    node("Erf", {c + "/div"}, c + "/erf");
    node("Add", {c + "/erf", c + ".one"}, c + "/add");
    node("Mul", {x, c + "/add"}, c + "/mul");
    node("Mul", {c + "/mul", c + ".half"}, out);
    return out;
  }

  void rename_output(const std::string& from, const std::string& to) {
    for (auto& n : *g_->mutable_node())
      for (auto& o : *n.mutable_output())
        if (o == from) o = to;
  }

  nn::Sequential& model_;
  const OnnxExportOptions& o_;
  onnx::ModelProto proto_;
  onnx::GraphProto* g_ = nullptr;
  std::map<std::string, int> qdq_made_;
};

}  // namespace

std::vector<std::uint8_t> export_onnx(nn::Sequential& model, const OnnxExportOptions& options) {
  const bool was_training = model.is_training();
  model.eval();
  onnx::ModelProto proto;
  try {
    proto = Exporter(model, options).build();
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  std::string bytes;
  if (!proto.SerializeToString(&bytes))
    throw Error("ONNX export: the model does not serialize (larger than 2 GiB?)");
  std::vector<std::uint8_t> out(bytes.begin(), bytes.end());
  onnx::ModelProto check = proto;
  detail::check_and_infer(check, "ONNX export", "the exported model");
  // An fp32 file must read back as the same layers.
  if (options.int8.empty()) import_onnx_bytes(out, "ONNX export", {});
  return out;
}

}  // namespace verdant::interop
