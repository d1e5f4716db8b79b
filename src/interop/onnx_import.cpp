// ONNX -> nn::Sequential. The graph is walked from its input along the chain of nodes that
// consume the running activation; constants (initializers, Constant nodes, Identity of a
// constant) are collected first. Each node becomes a layer, or a few nodes become one (MatMul
// + Add -> Linear, the Erf decomposition -> GELU, Pad + Conv/AveragePool -> padding).
#include "verdant/interop/onnx_import.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <numbers>
#include <optional>
#include <set>

#include "onnx_common.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"

namespace verdant::interop {

namespace fs = std::filesystem;

namespace {

// Attribute values and geometry are kept far from int64 overflow.
constexpr std::int64_t kMaxAttribute = 1 << 20;
// Per-sample activations above this many elements are refused (the runtime's limit is 2^24).
constexpr std::int64_t kMaxSampleElements = std::int64_t{1} << 28;

// A constant tensor (initializer or Constant node): float values, or integers for shapes and
// pads.
struct Constant {
  std::vector<std::int64_t> dims;
  bool is_float = false;
  std::vector<float> f;
  std::vector<std::int64_t> i;
  std::int64_t numel() const { return static_cast<std::int64_t>(is_float ? f.size() : i.size()); }
};

std::string shape_text(const std::vector<std::int64_t>& dims) {
  return shape_str(Shape(dims.begin(), dims.end()));
}

std::string batched(const std::vector<std::int64_t>& per_sample) {
  std::string s = "[N";
  for (const auto d : per_sample) s += ", " + std::to_string(d);
  return s + "]";
}

class Importer {
 public:
  Importer(std::string origin, fs::path folder)
      : origin_(std::move(origin)), folder_(std::move(folder)) {}

  ImportedModel run(std::span<const std::uint8_t> bytes) {
    parse(bytes);
    resolve_initializers();
    detail::check_and_infer(proto_, origin_, "the model");
    const onnx::GraphProto& g = proto_.graph();
    index_nodes(g);
    collect_constant_nodes(g);
    find_input(g);
    if (g.output_size() != 1)
      fail("the graph has " + std::to_string(g.output_size()) +
           " outputs; a classifier has one (the logits)");
    walk(g.output(0).name());
    check_everything_used(g);
    check_output_shape(g.output(0));

    ImportedModel out;
    out.model = model_;
    out.model->set_input_shape(input_shape_);
    out.opset = opset_;
    out.producer = proto_.producer_name() +
                   (proto_.producer_version().empty() ? "" : " " + proto_.producer_version());
    out.notes = std::move(notes_);
    if (model_->size() == 0) fail("the graph has no layers");
    out.yaml = nn::model_yaml(*model_);
    return out;
  }

 private:
  // ------------------------------------------------------------------ errors
  [[noreturn]] void fail(const std::string& what) const { throw Error(origin_ + ": " + what); }
  std::string label(const onnx::NodeProto& n) const {
    const std::string name = !n.name().empty() ? n.name() : n.output_size() ? n.output(0) : "?";
    return "node '" + name + "' (" + n.op_type() + ")";
  }
  [[noreturn]] void fail_node(const onnx::NodeProto& n, const std::string& what) const {
    fail(label(n) + ": " + what);
  }
  [[noreturn]] void unsupported(const onnx::NodeProto& n) const {
    std::string list;
    for (const auto& op : supported_operators()) list += (list.empty() ? "" : ", ") + op;
    const std::string name = !n.name().empty() ? n.name() : n.output_size() ? n.output(0) : "?";
    const std::string domain =
        n.domain().empty() || n.domain() == "ai.onnx" ? "" : " in domain " + n.domain();
    fail("node '" + name + "' (op " + n.op_type() + domain + ", opset " + std::to_string(opset_) +
         ") is not supported; supported operators: " + list);
  }

  // ------------------------------------------------------------------ parsing
  void parse(std::span<const std::uint8_t> bytes) {
    if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
      fail("larger than 2 GiB; keep the weights in external-data files");
    if (!proto_.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
      fail("not an ONNX model (not a valid protobuf ModelProto, or truncated)");
    if (!proto_.has_graph() || proto_.graph().node_size() == 0)
      fail("not an ONNX model (no graph with nodes; truncated?)");
    opset_ = detail::default_opset(proto_);
    if (opset_ == 0) fail("the model imports no opset of the default ONNX domain");
    if (opset_ < detail::kMinOpset || opset_ > detail::kMaxOpset)
      fail("opset " + std::to_string(opset_) + " is not supported (opsets " +
           std::to_string(detail::kMinOpset) + " to " + std::to_string(detail::kMaxOpset) +
           "; torch.onnx.export(..., opset_version=17) writes one)");
  }

  // External data is read into the tensors here, so that the checker, shape inference and the
  // mapping all see the weights in memory, and a missing file is named before anything else.
  void resolve_initializers() {
    auto* g = proto_.mutable_graph();
    for (auto& t : *g->mutable_initializer())
      if (t.data_location() == onnx::TensorProto::EXTERNAL) load_external(t);
  }

  void load_external(onnx::TensorProto& t) {
    std::string location;
    std::int64_t offset = 0, length = -1;
    for (const auto& e : t.external_data()) {
      if (e.key() == "location") location = e.value();
      auto number = [&](std::int64_t& v) {
        char* end = nullptr;
        const long long x = std::strtoll(e.value().c_str(), &end, 10);
        if (e.value().empty() || *end || x < 0)
          fail("initializer '" + t.name() + "': external-data " + e.key() + " '" + e.value() +
               "' is not a non-negative integer");
        v = x;
      };
      if (e.key() == "offset") number(offset);
      if (e.key() == "length") number(length);
    }
    if (location.empty())
      fail("initializer '" + t.name() + "' keeps its data outside the file but names no location");
    if (folder_.empty())
      fail("initializer '" + t.name() + "' reads external data from '" + location +
           "', but the model was not given as a file");
    const fs::path rel(location);
    if (rel.is_absolute() ||
        std::any_of(rel.begin(), rel.end(), [](const fs::path& p) { return p == ".."; }))
      fail("initializer '" + t.name() + "': external-data location '" + location +
           "' must be a relative path inside the model's folder");
    const fs::path file = folder_ / rel;
    std::error_code ec;
    if (!fs::is_regular_file(file, ec))
      fail("initializer '" + t.name() + "' reads its data from external file '" + location +
           "', which does not exist (" + file.string() + ")");
    const auto size = static_cast<std::int64_t>(fs::file_size(file, ec));
    if (ec) fail("cannot read external-data file " + file.string() + ": " + ec.message());
    if (length < 0) length = stored_bytes(t);
    if (length < 0)
      fail("initializer '" + t.name() + "' has an element type or shape that cannot be read");
    if (offset > size || length > size - offset)
      fail("initializer '" + t.name() + "': external-data file " + file.string() + " has " +
           std::to_string(size) + " bytes, fewer than offset " + std::to_string(offset) +
           " + length " + std::to_string(length));
    std::string data(static_cast<std::size_t>(length), '\0');
    std::ifstream in(file, std::ios::binary);
    in.seekg(offset);
    in.read(data.data(), length);
    if (!in) fail("cannot read external-data file " + file.string());
    t.set_raw_data(std::move(data));
    t.clear_external_data();
    t.set_data_location(onnx::TensorProto::DEFAULT);
  }

  // The bytes a tensor's dims and type call for (-1 when unknown or absurd).
  static std::int64_t stored_bytes(const onnx::TensorProto& t) {
    std::int64_t n = t.data_type() == onnx::TensorProto::INT64   ? 8
                     : t.data_type() == onnx::TensorProto::FLOAT ? 4
                     : t.data_type() == onnx::TensorProto::INT32 ? 4
                                                                 : -1;
    for (const auto d : t.dims()) {
      if (n < 0 || d < 0 || d > kMaxSampleElements ||
          n > kMaxSampleElements / std::max<std::int64_t>(d, 1))
        return -1;
      n *= d;
    }
    return n;
  }

  Constant to_constant(const onnx::TensorProto& t, const std::string& what) const {
    Constant c;
    std::int64_t n = 1;
    for (const auto d : t.dims()) {
      if (d < 0 || d > kMaxSampleElements || n > kMaxSampleElements / std::max<std::int64_t>(d, 1))
        fail(what + " has an invalid shape");
      c.dims.push_back(d);
      n *= d;
    }
    const auto un = static_cast<std::size_t>(n);
    auto raw_size_ok = [&](std::size_t elem) {
      if (t.raw_data().size() != un * elem)
        fail(what + " holds " + std::to_string(t.raw_data().size()) + " bytes for " +
             std::to_string(n) + " elements of shape " + shape_text(c.dims) + " (truncated?)");
    };
    // Values from raw_data (little-endian, what torch writes) or the typed repeated field.
    auto take = [&](auto& out, const auto& field, auto stored) {
      using Stored = decltype(stored);
      if (!t.raw_data().empty() || field.empty()) {
        raw_size_ok(sizeof(Stored));
        std::vector<Stored> v(un);
        if (un) std::memcpy(v.data(), t.raw_data().data(), un * sizeof(Stored));
        out.assign(v.begin(), v.end());
      } else {
        if (static_cast<std::size_t>(field.size()) != un)
          fail(what + " holds " + std::to_string(field.size()) + " values for shape " +
               shape_text(c.dims));
        out.assign(field.begin(), field.end());
      }
    };
    switch (t.data_type()) {
      case onnx::TensorProto::FLOAT:
        c.is_float = true;
        take(c.f, t.float_data(), float{});
        return c;
      case onnx::TensorProto::INT64:
        take(c.i, t.int64_data(), std::int64_t{});
        return c;
      case onnx::TensorProto::INT32:
        take(c.i, t.int32_data(), std::int32_t{});
        return c;
      default:
        fail(what + " has element type " + onnx::TensorProto::DataType_Name(t.data_type()) +
             "; weights must be float32 (shapes and pads int64)");
    }
  }

  // ------------------------------------------------------------------ graph indexing
  void index_nodes(const onnx::GraphProto& g) {
    used_.assign(static_cast<std::size_t>(g.node_size()), false);
    for (int k = 0; k < g.node_size(); ++k)
      for (const auto& in : g.node(k).input())
        if (!in.empty()) consumers_[in].push_back(k);
    for (const auto& t : g.initializer()) initializers_[t.name()] = &t;
  }

  // Constants by value name. Initializers are converted when first used, so that an unused or
  // unsupported one (an int8 weight of a quantized model) does not hide the real problem.
  bool is_const(const std::string& name) const {
    return consts_.count(name) || initializers_.count(name);
  }
  const Constant* find_const(const std::string& name) const {
    if (auto it = consts_.find(name); it != consts_.end()) return &it->second;
    auto it = initializers_.find(name);
    if (it == initializers_.end()) return nullptr;
    return &(consts_[name] = to_constant(*it->second, "initializer '" + name + "'"));
  }

  void collect_constant_nodes(const onnx::GraphProto& g) {
    for (int k = 0; k < g.node_size(); ++k) {
      const auto& n = g.node(k);
      if (!n.domain().empty() && n.domain() != "ai.onnx") continue;
      if (n.op_type() == "Constant" && n.output_size() == 1) {
        consts_[n.output(0)] = constant_attribute(n);
        used_[static_cast<std::size_t>(k)] = true;
      } else if (n.op_type() == "Identity" && n.input_size() == 1 && n.output_size() == 1 &&
                 is_const(n.input(0))) {
        const Constant c = *find_const(n.input(0));
        consts_[n.output(0)] = c;
        used_[static_cast<std::size_t>(k)] = true;
      }
    }
  }

  Constant constant_attribute(const onnx::NodeProto& n) const {
    if (n.attribute_size() != 1) fail_node(n, "needs exactly one value attribute");
    const auto& a = n.attribute(0);
    Constant c;
    if (a.name() == "value") return to_constant(a.t(), label(n) + " value");
    if (a.name() == "value_float") {
      c.is_float = true;
      c.f = {a.f()};
    } else if (a.name() == "value_floats") {
      c.is_float = true;
      c.f.assign(a.floats().begin(), a.floats().end());
      c.dims = {static_cast<std::int64_t>(c.f.size())};
    } else if (a.name() == "value_int") {
      c.i = {a.i()};
    } else if (a.name() == "value_ints") {
      c.i.assign(a.ints().begin(), a.ints().end());
      c.dims = {static_cast<std::int64_t>(c.i.size())};
    } else {
      fail_node(n, "constant attribute '" + a.name() + "' is not supported");
    }
    return c;
  }

  void find_input(const onnx::GraphProto& g) {
    const onnx::ValueInfoProto* input = nullptr;
    for (const auto& in : g.input()) {
      if (is_const(in.name())) continue;  // old exporters list initializers as inputs
      if (input)
        fail("the graph has more than one input ('" + input->name() + "', '" + in.name() +
             "'); a model takes one batch of samples");
      input = &in;
    }
    if (!input) fail("the graph has no input");
    input_name_ = input->name();
    const auto& type = input->type();
    if (!type.has_tensor_type() || type.tensor_type().elem_type() != onnx::TensorProto::FLOAT)
      fail("input '" + input_name_ + "' must be a float32 tensor");
    if (!type.tensor_type().has_shape())
      fail("input '" + input_name_ + "' has no shape; export with a fixed sample shape");
    const auto& shape = type.tensor_type().shape();
    if (shape.dim_size() != 2 && shape.dim_size() != 4)
      fail("input '" + input_name_ + "' must be [N, features] or [N, C, H, W], it has " +
           std::to_string(shape.dim_size()) + " dimensions");
    std::int64_t numel = 1;
    for (int d = 1; d < shape.dim_size(); ++d) {
      const auto& dim = shape.dim(d);
      if (!dim.has_dim_value() || dim.dim_value() <= 0 || dim.dim_value() > kMaxAttribute)
        fail("input '" + input_name_ + "' dimension " + std::to_string(d) +
             " must be a fixed size (only the batch dimension may be dynamic)");
      shape_.push_back(dim.dim_value());
      numel *= dim.dim_value();
      if (numel > kMaxSampleElements) fail("input '" + input_name_ + "' is too large");
    }
    input_shape_ = shape_;
  }

  // ------------------------------------------------------------------ attributes
  const onnx::AttributeProto* attr(const onnx::NodeProto& n, const std::string& name) const {
    for (const auto& a : n.attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  std::int64_t int_attr(const onnx::NodeProto& n, const std::string& name, std::int64_t def,
                        std::int64_t lo = -kMaxAttribute, std::int64_t hi = kMaxAttribute) const {
    const auto* a = attr(n, name);
    const std::int64_t v = a ? a->i() : def;
    if (v < lo || v > hi)
      fail_node(n, "attribute " + name + " = " + std::to_string(v) + " is out of range [" +
                       std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v;
  }
  float float_attr(const onnx::NodeProto& n, const std::string& name, float def) const {
    const auto* a = attr(n, name);
    const float v = a ? a->f() : def;
    if (!std::isfinite(v)) fail_node(n, "attribute " + name + " is not a finite number");
    return v;
  }
  std::string string_attr(const onnx::NodeProto& n, const std::string& name,
                          const std::string& def) const {
    const auto* a = attr(n, name);
    return a ? a->s() : def;
  }
  std::vector<std::int64_t> ints_attr(const onnx::NodeProto& n, const std::string& name,
                                      std::vector<std::int64_t> def, std::int64_t lo,
                                      std::int64_t hi) const {
    const auto* a = attr(n, name);
    if (!a) return def;
    std::vector<std::int64_t> v(a->ints().begin(), a->ints().end());
    for (const auto x : v)
      if (x < lo || x > hi)
        fail_node(n, "attribute " + name + " holds " + std::to_string(x) + ", out of range [" +
                         std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v;
  }
  // A 2-D window attribute (kernel_shape, strides, dilations) that Verdant's square layers
  // take as one number.
  std::int64_t square(const onnx::NodeProto& n, const std::string& name, std::int64_t def,
                      std::int64_t lo) const {
    const auto v = ints_attr(n, name, {def, def}, lo, kMaxAttribute);
    if (v.size() != 2) fail_node(n, name + " must have 2 values for a 2-D input");
    if (v[0] != v[1])
      fail_node(n, name + " [" + std::to_string(v[0]) + ", " + std::to_string(v[1]) +
                       "] is not square; Verdant's layers take one size for both axes");
    return v[0];
  }
  // pads [top, left, bottom, right], equal on every side; auto_pad NOTSET or VALID.
  std::int64_t symmetric_pads(const onnx::NodeProto& n) const {
    const std::string auto_pad = string_attr(n, "auto_pad", "NOTSET");
    if (auto_pad == "VALID") return 0;
    if (auto_pad != "NOTSET")
      fail_node(n, "auto_pad " + auto_pad + " is not supported; export with explicit pads");
    const auto p = ints_attr(n, "pads", {0, 0, 0, 0}, 0, kMaxAttribute);
    if (p.size() != 4) fail_node(n, "pads must have 4 values for a 2-D input");
    if (!(p[0] == p[1] && p[1] == p[2] && p[2] == p[3]))
      fail_node(n, "pads [" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ", " +
                       std::to_string(p[2]) + ", " + std::to_string(p[3]) +
                       "] differ between sides; Verdant pads every side alike");
    return p[0];
  }

  const Constant& constant_input(const onnx::NodeProto& n, int k, const std::string& what) const {
    if (k >= n.input_size() || n.input(k).empty()) fail_node(n, "needs " + what);
    const Constant* c = find_const(n.input(k));
    if (!c)
      fail_node(n, what + " '" + n.input(k) +
                       "' must be a constant (an initializer), not computed in the graph");
    return *c;
  }
  const Constant* optional_constant(const onnx::NodeProto& n, int k,
                                    const std::string& what) const {
    if (k >= n.input_size() || n.input(k).empty()) return nullptr;
    return &constant_input(n, k, what);
  }
  const Constant& float_weights(const onnx::NodeProto& n, int k, const std::string& what) const {
    const Constant& c = constant_input(n, k, what);
    if (!c.is_float) fail_node(n, what + " must be float32");
    for (std::size_t i = 0; i < c.f.size(); ++i)
      if (!std::isfinite(c.f[i]))
        fail_node(n,
                  what + " '" + n.input(k) + "' element " + std::to_string(i) + " is not finite");
    return c;
  }
  // A scalar float constant (as in the Erf decomposition of GELU).
  std::optional<float> scalar_of(const std::string& value) const {
    const Constant* c = value.empty() ? nullptr : find_const(value);
    if (!c || c->numel() != 1) return std::nullopt;
    return c->is_float ? c->f[0] : static_cast<float>(c->i[0]);
  }

  // ------------------------------------------------------------------ the chain
  const onnx::NodeProto& node(int k) const { return proto_.graph().node(k); }

  // Consumers of `value` not yet used.
  std::vector<int> users(const std::string& value) const {
    std::vector<int> out;
    auto it = consumers_.find(value);
    if (it == consumers_.end()) return out;
    for (int k : it->second)
      if (!used_[static_cast<std::size_t>(k)] && std::find(out.begin(), out.end(), k) == out.end())
        out.push_back(k);
    return out;
  }
  // The only consumer of `value`, or -1.
  int only_user(const std::string& value) const {
    const auto u = users(value);
    return u.size() == 1 ? u[0] : -1;
  }
  void use(int k) { used_[static_cast<std::size_t>(k)] = true; }
  void add(nn::ModulePtr layer) { model_->push_back(std::move(layer)); }

  void walk(const std::string& output) {
    cur_ = input_name_;
    while (true) {
      const auto u = users(cur_);
      if (u.empty()) {
        if (cur_ != output) fail("the value '" + cur_ + "' reaches no further node nor the output");
        break;
      }
      if (cur_ == output)
        fail("the output '" + output + "' also feeds further nodes; only chains are supported");
      if (u.size() == 2 && gelu(u)) continue;
      if (u.size() > 1) {
        for (int k : u)
          if (!is_supported(node(k))) unsupported(node(k));
        fail(label(node(u[0])) + ": its input '" + cur_ + "' feeds " + std::to_string(u.size()) +
             " nodes; only chains of layers are supported (no branches or residual connections)");
      }
      step(u[0]);
    }
    if (pending_pad_ > 0) fail("a Pad node is not followed by a Conv or AveragePool");
  }

  bool is_supported(const onnx::NodeProto& n) const {
    if (!n.domain().empty() && n.domain() != "ai.onnx") return false;
    const auto& ops = supported_operators();
    return std::binary_search(ops.begin(), ops.end(), n.op_type());
  }

  // The running activation must be this node's first (data) input.
  void expect_data_input(const onnx::NodeProto& n) const {
    if (n.input_size() == 0 || n.input(0) != cur_)
      fail_node(n, "takes the running activation '" + cur_ +
                       "' as a weight or second operand; only layer chains are supported");
    for (int k = 1; k < n.input_size(); ++k)
      if (n.input(k) == cur_) fail_node(n, "uses the running activation twice");
  }
  void single_output(const onnx::NodeProto& n) const {
    for (int k = 1; k < n.output_size(); ++k)
      if (!n.output(k).empty() && !users(n.output(k)).empty())
        fail_node(n, "its output " + std::to_string(k) + " ('" + n.output(k) +
                         "') is used; only the first output is supported");
    if (n.output_size() == 0) fail_node(n, "has no output");
  }
  bool image() const { return shape_.size() == 3; }
  void need_image(const onnx::NodeProto& n) const {
    if (!image())
      fail_node(n, "needs an [N, C, H, W] input, but the activation here is " + per_sample());
  }
  void need_flat(const onnx::NodeProto& n) const {
    if (shape_.size() != 1)
      fail_node(n, "needs a flat [N, features] input, but the activation here is " + per_sample() +
                       " (add a Flatten before it)");
  }
  // The activation's shape with the batch dimension as N, e.g. "[N, 16, 14, 14]".
  std::string per_sample() const { return batched(shape_); }
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape_) n *= d;
    return n;
  }

  void step(int k) {
    const onnx::NodeProto& n = node(k);
    if (!is_supported(n)) unsupported(n);
    expect_data_input(n);
    single_output(n);
    use(k);
    const std::string& op = n.op_type();
    if (pending_pad_ > 0 && op != "Conv" && op != "AveragePool")
      fail_node(n,
                "follows a Pad node; zero padding is supported only before Conv or "
                "AveragePool");
    std::string next = n.output(0);
    if (op == "Conv") {
      conv(n);
    } else if (op == "Gemm") {
      gemm(n);
    } else if (op == "MatMul") {
      next = matmul(n);
    } else if (op == "BatchNormalization") {
      batch_norm(n);
    } else if (op == "Relu") {
      add(std::make_shared<nn::ReLU>());
    } else if (op == "LeakyRelu") {
      add(std::make_shared<nn::LeakyReLU>(float_attr(n, "alpha", 0.01f)));
    } else if (op == "Sigmoid") {
      add(std::make_shared<nn::Sigmoid>());
    } else if (op == "Tanh") {
      add(std::make_shared<nn::Tanh>());
    } else if (op == "Softmax" || op == "LogSoftmax") {
      need_flat(n);
      const std::int64_t axis = int_attr(n, "axis", opset_ >= 13 ? -1 : 1, -2, 1);
      if (axis != 1 && axis != -1)
        fail_node(n, "axis " + std::to_string(axis) + " is not the feature axis");
      if (op == "Softmax")
        add(std::make_shared<nn::Softmax>());
      else
        add(std::make_shared<nn::LogSoftmax>());
    } else if (op == "MaxPool" || op == "AveragePool") {
      pool(n);
    } else if (op == "GlobalAveragePool") {
      need_image(n);
      if (shape_[1] != shape_[2])
        fail_node(n, "input " + per_sample() + " is not square; Verdant pools square windows");
      add(std::make_shared<nn::AvgPool2d>(shape_[1], shape_[1], 0));
      shape_ = {shape_[0], 1, 1};
    } else if (op == "Flatten") {
      const std::int64_t rank = static_cast<std::int64_t>(shape_.size()) + 1;
      const std::int64_t axis = int_attr(n, "axis", 1, -rank, rank);
      if (axis != 1 && axis != 1 - rank)
        fail_node(n, "axis " + std::to_string(axis) + " does not keep the batch dimension alone");
      if (shape_.size() != 1) {
        add(std::make_shared<nn::Flatten>());
        shape_ = {numel()};
      }
    } else if (op == "Reshape") {
      reshape(n);
    } else if (op == "Dropout" || op == "Identity") {
      notes_.push_back(label(n) + " left out (identity at inference)");
    } else if (op == "Pad") {
      pad(n);
    } else {
      // Listed as supported but only as part of a pattern (Add after MatMul, Erf in GELU...).
      fail_node(n, "is supported only as part of a larger pattern (" + op +
                       " after MatMul, or in GELU's Erf decomposition), not on its own here");
    }
    cur_ = next;
  }

  void conv(const onnx::NodeProto& n) {
    need_image(n);
    const Constant& w = float_weights(n, 1, "weight");
    const Constant* b = optional_constant(n, 2, "bias");
    if (w.dims.size() != 4)
      fail_node(n, "weight must be [OC, C/group, kH, kW], it is " + shape_text(w.dims));
    const std::int64_t groups = int_attr(n, "group", 1, 1, kMaxAttribute);
    if (w.dims[2] != w.dims[3]) fail_node(n, "kernel " + shape_text(w.dims) + " is not square");
    const std::int64_t k = w.dims[2];
    const auto ks = ints_attr(n, "kernel_shape", {k, k}, 1, kMaxAttribute);
    if (ks.size() != 2 || ks[0] != k || ks[1] != k)
      fail_node(n, "kernel_shape does not match the weight " + shape_text(w.dims));
    const std::int64_t stride = square(n, "strides", 1, 1);
    const std::int64_t dilation = square(n, "dilations", 1, 1);
    const std::int64_t padding = symmetric_pads(n) + pending_pad_;
    pending_pad_ = 0;
    const std::int64_t c = shape_[0];
    if (c % groups || w.dims[0] % groups || w.dims[1] * groups != c)
      fail_node(n, "weight " + shape_text(w.dims) + " in " + std::to_string(groups) +
                       " groups does not fit " + std::to_string(c) + " input channels");
    const std::int64_t span = dilation * (k - 1) + 1;
    if (shape_[1] + 2 * padding < span || shape_[2] + 2 * padding < span)
      fail_node(n, "kernel larger than the padded input " + per_sample());
    nn::Conv2dOptions o{c, w.dims[0], k};
    o.stride = stride;
    o.padding = padding;
    o.groups = groups;
    o.dilation = dilation;
    o.bias = b != nullptr;
    if (b && (!b->is_float || b->numel() != o.out_channels))
      fail_node(n, "bias must hold " + std::to_string(o.out_channels) + " float values");
    auto layer = std::make_shared<nn::Conv2d>(o);
    copy(layer->weight(), w.f);
    if (b) copy(layer->bias(), float_weights(n, 2, "bias").f);
    add(layer);
    shape_ = {o.out_channels, (shape_[1] + 2 * padding - span) / stride + 1,
              (shape_[2] + 2 * padding - span) / stride + 1};
  }

  void gemm(const onnx::NodeProto& n) {
    need_flat(n);
    if (int_attr(n, "transA", 0, 0, 1) != 0) fail_node(n, "transA = 1 is not supported");
    const bool trans_b = int_attr(n, "transB", 0, 0, 1) == 1;
    const float alpha = float_attr(n, "alpha", 1.f), beta = float_attr(n, "beta", 1.f);
    const Constant& b = float_weights(n, 1, "weight (B)");
    if (b.dims.size() != 2) fail_node(n, "B must be 2-D, it is " + shape_text(b.dims));
    const std::int64_t in = trans_b ? b.dims[1] : b.dims[0];
    const std::int64_t out = trans_b ? b.dims[0] : b.dims[1];
    if (in != shape_[0])
      fail_node(n, "B " + shape_text(b.dims) + " does not fit " + std::to_string(shape_[0]) +
                       " input features");
    linear(b, trans_b, alpha, optional_constant(n, 2, "bias (C)") ? 2 : -1, n, beta, in, out);
  }

  // MatMul with a constant [in, out] right operand; a following Add of a constant [out] is its
  // bias. Returns the value the chain continues from.
  std::string matmul(const onnx::NodeProto& n) {
    need_flat(n);
    const Constant& b = float_weights(n, 1, "weight");
    if (b.dims.size() != 2 || b.dims[0] != shape_[0])
      fail_node(n, "weight " + shape_text(b.dims) + " does not fit " + std::to_string(shape_[0]) +
                       " input features");
    const int a = only_user(n.output(0));
    if (a >= 0 && node(a).op_type() == "Add" && node(a).input_size() == 2 &&
        is_supported(node(a))) {
      const onnx::NodeProto& add_node = node(a);
      const int other = add_node.input(0) == n.output(0) ? 1 : 0;
      if (add_node.input(1 - other) == n.output(0) && is_const(add_node.input(other))) {
        use(a);
        single_output(add_node);
        linear(b, false, 1.f, other, add_node, 1.f, b.dims[0], b.dims[1]);
        return add_node.output(0);
      }
    }
    linear(b, false, 1.f, -1, n, 1.f, b.dims[0], b.dims[1]);
    return n.output(0);
  }

  // A Linear from a weight B ([out, in] when transposed, else [in, out]) scaled by alpha, and
  // input `bias_input` of `bias_node` scaled by beta (-1: no bias).
  void linear(const Constant& b, bool trans_b, float alpha, int bias_input,
              const onnx::NodeProto& bias_node, float beta, std::int64_t in, std::int64_t out) {
    auto layer = std::make_shared<nn::Linear>(in, out, bias_input >= 0);
    float* w = layer->weight().value().data<float>();
    for (std::int64_t o = 0; o < out; ++o)
      for (std::int64_t i = 0; i < in; ++i)
        w[o * in + i] = alpha * (trans_b ? b.f[static_cast<std::size_t>(o * in + i)]
                                         : b.f[static_cast<std::size_t>(i * out + o)]);
    if (bias_input >= 0) {
      const Constant& c = float_weights(bias_node, bias_input, "bias");
      if (c.numel() != out && c.numel() != 1)
        fail_node(bias_node, "bias " + shape_text(c.dims) + " does not fit " + std::to_string(out) +
                                 " outputs");
      float* bp = layer->bias().value().data<float>();
      for (std::int64_t o = 0; o < out; ++o)
        bp[o] = beta * c.f[c.numel() == 1 ? 0 : static_cast<std::size_t>(o)];
    }
    add(layer);
    shape_ = {out};
  }

  void batch_norm(const onnx::NodeProto& n) {
    if (shape_.size() != 1 && shape_.size() != 3)
      fail_node(n, "needs [N, C] or [N, C, H, W], the activation here is " + per_sample());
    if (int_attr(n, "training_mode", 0, 0, 1) != 0)
      fail_node(n, "training_mode = 1; export the model in eval mode");
    const std::int64_t c = shape_[0];
    const char* names[] = {"scale", "bias", "mean", "var"};
    std::vector<const Constant*> p;
    for (int k = 0; k < 4; ++k) {
      const Constant& t = float_weights(n, k + 1, names[k]);
      if (t.numel() != c)
        fail_node(n, std::string(names[k]) + " holds " + std::to_string(t.numel()) +
                         " values for " + std::to_string(c) + " channels");
      p.push_back(&t);
    }
    const float eps = float_attr(n, "epsilon", 1e-5f);
    const float momentum = float_attr(n, "momentum", 0.9f);
    if (!(eps > 0)) fail_node(n, "epsilon must be positive");
    // ONNX: running = momentum * running + (1 - momentum) * batch; PyTorch and Verdant weigh
    // the batch with their momentum.
    const float ours = std::clamp(1.f - momentum, 0.f, 1.f);
    std::shared_ptr<nn::BatchNorm> bn;
    if (shape_.size() == 3)
      bn = std::make_shared<nn::BatchNorm2d>(c, eps, ours);
    else
      bn = std::make_shared<nn::BatchNorm1d>(c, eps, ours);
    copy(bn->weight(), p[0]->f);
    copy(bn->bias(), p[1]->f);
    std::copy(p[2]->f.begin(), p[2]->f.end(), bn->running_mean().data<float>());
    for (std::int64_t i = 0; i < c; ++i) {
      if (!(p[3]->f[static_cast<std::size_t>(i)] >= 0))
        fail_node(n, "var element " + std::to_string(i) + " is negative");
      bn->running_var().data<float>()[i] = p[3]->f[static_cast<std::size_t>(i)];
    }
    add(bn);
  }

  void pool(const onnx::NodeProto& n) {
    need_image(n);
    const bool max = n.op_type() == "MaxPool";
    const auto ks = ints_attr(n, "kernel_shape", {}, 1, kMaxAttribute);
    if (ks.size() != 2) fail_node(n, "kernel_shape must have 2 values");
    if (ks[0] != ks[1]) fail_node(n, "kernel_shape is not square");
    const std::int64_t k = ks[0];
    const std::int64_t stride = square(n, "strides", 1, 1);
    if (int_attr(n, "ceil_mode", 0, 0, 1) != 0)
      fail_node(n, "ceil_mode = 1 is not supported (Verdant rounds pooled sizes down)");
    if (max) {
      if (square(n, "dilations", 1, 1) != 1) fail_node(n, "dilated pooling is not supported");
      if (int_attr(n, "storage_order", 0, 0, 1) != 0) fail_node(n, "storage_order must be 0");
    }
    std::int64_t padding = symmetric_pads(n);
    if (!max && padding > 0 && int_attr(n, "count_include_pad", 0, 0, 1) == 0)
      fail_node(n,
                "count_include_pad = 0 with padding is not supported (Verdant's average "
                "pooling counts padded zeros, like PyTorch's default)");
    padding += pending_pad_;
    pending_pad_ = 0;
    if (2 * padding > k) fail_node(n, "padding must be at most half the kernel");
    if (shape_[1] + 2 * padding < k || shape_[2] + 2 * padding < k)
      fail_node(n, "kernel larger than the input " + per_sample());
    if (max)
      add(std::make_shared<nn::MaxPool2d>(k, stride, padding));
    else
      add(std::make_shared<nn::AvgPool2d>(k, stride, padding));
    shape_ = {shape_[0], (shape_[1] + 2 * padding - k) / stride + 1,
              (shape_[2] + 2 * padding - k) / stride + 1};
  }

  void reshape(const onnx::NodeProto& n) {
    const Constant& s = constant_input(n, 1, "shape");
    if (s.is_float) fail_node(n, "shape must be int64");
    if (int_attr(n, "allowzero", 0, 0, 1) != 0) fail_node(n, "allowzero = 1 is not supported");
    const std::int64_t f = numel();
    const auto& t = s.i;
    const bool flat = t.size() == 2 && (t[0] == 0 || t[0] == -1 || t[0] > 0) &&
                      (t[1] == f || (t[1] == -1 && t[0] != -1));
    if (!flat)
      fail_node(n, "reshape to " + shape_text(t) + " is supported only as a flatten to [N, " +
                       std::to_string(f) + "] or [N, -1] (the activation here is " + per_sample() +
                       ")");
    if (shape_.size() != 1) add(std::make_shared<nn::Flatten>());
    shape_ = {f};
  }

  void pad(const onnx::NodeProto& n) {
    need_image(n);
    if (string_attr(n, "mode", "constant") != "constant")
      fail_node(n, "only constant (zero) padding is supported");
    const Constant& p = constant_input(n, 1, "pads");
    if (p.is_float || p.numel() != 8) fail_node(n, "pads must be 8 int64 values for [N, C, H, W]");
    if (const Constant* v = optional_constant(n, 2, "constant_value")) {
      const bool zero = v->numel() == 1 && (v->is_float ? v->f[0] == 0.f : v->i[0] == 0);
      if (!zero) fail_node(n, "only zero padding is supported");
    }
    if (n.input_size() > 3 && !n.input(3).empty()) fail_node(n, "the axes input is not supported");
    const auto& q = p.i;
    if (q[0] || q[1] || q[4] || q[5]) fail_node(n, "pads the batch or channel axis");
    if (!(q[2] == q[3] && q[3] == q[6] && q[6] == q[7]) || q[2] < 0 || q[2] > kMaxAttribute)
      fail_node(n, "pads differ between sides; Verdant pads every side alike");
    if (q[2] == 0) {
      notes_.push_back(label(n) + " left out (pads nothing)");
      return;
    }
    pending_pad_ = q[2];
    notes_.push_back(label(n) + " folded into the next layer's padding");
  }

  // GELU as torch.onnx.export writes it before opset 20: x * 0.5 * (1 + erf(x / sqrt(2))),
  // as Div(x, sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5, or with x * 0.5 taken first.
  bool gelu(const std::vector<int>& u) {
    auto is = [&](int k, const char* op) {
      return k >= 0 && node(k).op_type() == op && is_supported(node(k)) &&
             node(k).output_size() >= 1;
    };
    auto near = [](std::optional<float> v, double want) {
      return v && std::abs(*v - want) <= 1e-4 * std::abs(want);
    };
    // The operand of binary node k that is not `value`.
    auto other_operand = [&](int k, const std::string& value) -> std::string {
      const auto& n = node(k);
      if (n.input_size() != 2) return {};
      if (n.input(0) == value) return n.input(1);
      if (n.input(1) == value) return n.input(0);
      return {};
    };
    for (int pick = 0; pick < 2; ++pick) {
      const int d = u[static_cast<std::size_t>(pick)], x2 = u[static_cast<std::size_t>(1 - pick)];
      const bool scaled =
          (is(d, "Div") && node(d).input(0) == cur_ &&
           near(scalar_of(node(d).input(1)), std::numbers::sqrt2)) ||
          (is(d, "Mul") && near(scalar_of(other_operand(d, cur_)), std::numbers::sqrt2 / 2));
      if (!scaled) continue;
      const int e = only_user(node(d).output(0));
      if (!is(e, "Erf")) continue;
      const int a = only_user(node(e).output(0));
      if (!is(a, "Add") || !near(scalar_of(other_operand(a, node(e).output(0))), 1.0)) continue;
      const std::string one_plus = node(a).output(0);
      int last = -1;
      std::vector<int> nodes{d, e, a, x2};
      if (is(x2, "Mul") && other_operand(x2, cur_) == one_plus && only_user(one_plus) == x2) {
        const int h = only_user(node(x2).output(0));
        if (!is(h, "Mul") || !near(scalar_of(other_operand(h, node(x2).output(0))), 0.5)) continue;
        last = h;
      } else if (is(x2, "Mul") && near(scalar_of(other_operand(x2, cur_)), 0.5)) {
        const int m = only_user(one_plus);
        if (!is(m, "Mul") || other_operand(m, one_plus) != node(x2).output(0) ||
            only_user(node(x2).output(0)) != m)
          continue;
        last = m;
      } else {
        continue;
      }
      if (std::find(nodes.begin(), nodes.end(), last) == nodes.end()) nodes.push_back(last);
      for (int k : nodes) {
        single_output(node(k));
        use(k);
      }
      add(std::make_shared<nn::GELU>());
      cur_ = node(last).output(0);
      return true;
    }
    return false;
  }

  void copy(nn::Variable& v, const std::vector<float>& src) {
    if (static_cast<std::int64_t>(src.size()) != v.numel())
      fail("internal: " + std::to_string(src.size()) + " weights for a tensor of " +
           std::to_string(v.numel()));
    std::copy(src.begin(), src.end(), v.value().data<float>());
  }

  void check_everything_used(const onnx::GraphProto& g) const {
    for (int k = 0; k < g.node_size(); ++k) {
      if (used_[static_cast<std::size_t>(k)]) continue;
      if (!is_supported(g.node(k))) unsupported(g.node(k));
      fail(label(g.node(k)) + " is not on the chain from the input to the output");
    }
  }

  void check_output_shape(const onnx::ValueInfoProto& out) const {
    if (!out.type().has_tensor_type() || !out.type().tensor_type().has_shape()) return;
    const auto& s = out.type().tensor_type().shape();
    bool known = s.dim_size() == static_cast<int>(shape_.size()) + 1;
    std::vector<std::int64_t> theirs;
    for (int d = 1; d < s.dim_size(); ++d) {
      if (!s.dim(d).has_dim_value()) return;
      theirs.push_back(s.dim(d).dim_value());
    }
    if (!known || theirs != shape_)
      fail("the graph declares its output as " + batched(theirs) + " but the layers compute " +
           per_sample());
  }

  std::string origin_;
  fs::path folder_;
  onnx::ModelProto proto_;
  std::int64_t opset_ = 0;
  mutable std::map<std::string, Constant> consts_;
  std::map<std::string, const onnx::TensorProto*> initializers_;
  std::map<std::string, std::vector<int>> consumers_;
  std::vector<bool> used_;
  std::string input_name_, cur_;
  std::vector<std::int64_t> shape_;  // per sample, at the running activation
  Shape input_shape_;
  std::int64_t pending_pad_ = 0;
  std::shared_ptr<nn::Sequential> model_ = std::make_shared<nn::Sequential>();
  std::vector<std::string> notes_;
};

}  // namespace

const std::vector<std::string>& supported_operators() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> v{"Add",
                               "AveragePool",
                               "BatchNormalization",
                               "Constant",
                               "Conv",
                               "Div",
                               "Dropout",
                               "Erf",
                               "Flatten",
                               "Gemm",
                               "GlobalAveragePool",
                               "Identity",
                               "LeakyRelu",
                               "LogSoftmax",
                               "MatMul",
                               "MaxPool",
                               "Mul",
                               "Pad",
                               "Relu",
                               "Reshape",
                               "Sigmoid",
                               "Softmax",
                               "Tanh"};
    std::sort(v.begin(), v.end());
    return v;
  }();
  return ops;
}

ImportedModel import_onnx_bytes(std::span<const std::uint8_t> bytes, const std::string& origin,
                                const fs::path& folder) {
  return Importer(origin, folder).run(bytes);
}

ImportedModel import_onnx(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path.string() + ": no such ONNX file");
  if (fs::is_directory(path, ec)) throw Error(path.string() + ": is a directory, not an ONNX file");
  const auto bytes = read_file_bytes(path);
  fs::path folder = path.parent_path();
  if (folder.empty()) folder = ".";
  return import_onnx_bytes(bytes, path.string(), folder);
}

bool looks_like_onnx(std::span<const std::uint8_t> bytes) {
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return false;
  onnx::ModelProto proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  return proto.has_graph() && proto.graph().node_size() > 0 && detail::default_opset(proto) > 0;
}

}  // namespace verdant::interop
