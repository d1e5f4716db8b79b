#pragma once
// Builds small ONNX models with libonnx's generated classes, for the import tests: the graphs
// torch.onnx.export writes (and broken ones), without Python.
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace verdant::interop::testing {

class OnnxBuilder {
 public:
  explicit OnnxBuilder(std::int64_t opset = 13) {
    model_.set_ir_version(7);
    model_.set_producer_name("verdant-test");
    auto* op = model_.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
    graph()->set_name("test");
  }
  onnx::GraphProto* graph() { return model_.mutable_graph(); }
  onnx::ModelProto& model() { return model_; }

  // A float input or output with a dynamic batch dimension ("N") and fixed sample dims.
  void input(const std::string& name, const std::vector<std::int64_t>& sample,
             bool dynamic_batch = true) {
    value_info(graph()->add_input(), name, sample, dynamic_batch);
  }
  void output(const std::string& name, const std::vector<std::int64_t>& sample) {
    value_info(graph()->add_output(), name, sample, true);
  }

  // An initializer with the given values (random in [-1, 1) when empty).
  std::vector<float> weight(const std::string& name, const std::vector<std::int64_t>& dims,
                            std::vector<float> values = {}) {
    std::int64_t n = 1;
    for (auto d : dims) n *= d;
    if (values.empty()) {
      std::uniform_real_distribution<float> u(-1.f, 1.f);
      for (std::int64_t i = 0; i < n; ++i) values.push_back(u(rng_));
    }
    auto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
    return values;
  }
  // A float initializer whose data lives in an external file (as onnx.save_model(...,
  // save_as_external_data=True) writes it), at `offset` bytes into `location`.
  void external_weight(const std::string& name, const std::vector<std::int64_t>& dims,
                       const std::string& location, std::int64_t offset) {
    auto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) t->add_dims(d);
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* loc = t->add_external_data();
    loc->set_key("location");
    loc->set_value(location);
    auto* off = t->add_external_data();
    off->set_key("offset");
    off->set_value(std::to_string(offset));
  }
  void ints(const std::string& name, const std::vector<std::int64_t>& values) {
    auto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<std::int64_t>(values.size()));
    for (auto v : values) t->add_int64_data(v);
  }
  // A scalar float Constant node (as torch writes GELU's constants).
  void scalar(const std::string& name, float v) {
    auto* n = graph()->add_node();
    n->set_op_type("Constant");
    n->set_name(name + "_node");
    n->add_output(name);
    auto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    a->mutable_t()->set_data_type(onnx::TensorProto::FLOAT);
    a->mutable_t()->add_float_data(v);
  }

  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name = "") {
    auto* n = graph()->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + "_" + std::to_string(graph()->node_size()) : name);
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    return n;
  }
  static void attr(onnx::NodeProto* n, const std::string& name, std::int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, std::vector<std::int64_t> v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }

  std::vector<std::uint8_t> bytes() const {
    std::string s;
    model_.SerializeToString(&s);
    return std::vector<std::uint8_t>(s.begin(), s.end());
  }

 private:
  static void value_info(onnx::ValueInfoProto* v, const std::string& name,
                         const std::vector<std::int64_t>& sample, bool dynamic_batch) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    auto* s = t->mutable_shape();
    if (dynamic_batch)
      s->add_dim()->set_dim_param("N");
    else
      s->add_dim()->set_dim_value(2);
    for (auto d : sample) s->add_dim()->set_dim_value(d);
  }

  onnx::ModelProto model_;
  std::mt19937 rng_{42};
};

}  // namespace verdant::interop::testing
