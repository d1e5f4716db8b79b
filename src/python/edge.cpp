// The edge runtime for Python: runtime::Model over NumPy arrays. A C-contiguous float32 array
// is read in place (no copy); uint8 pixels go through the model's byte transform, and other
// layouts are copied once into a scratch buffer. Inference runs with the GIL released; one
// lock per model keeps its arena to one caller at a time.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "verdant/core/error.hpp"
#include "verdant/runtime/model.hpp"

namespace verdant::python {

namespace rt = verdant::runtime;

namespace {

std::string shape_text(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    s += (i ? ", " : "") + std::to_string(a.shape(i)) + (a.ndim() == 1 ? "," : "");
  return s + ")";
}

class EdgeModel {
 public:
  explicit EdgeModel(const std::string& path) : path_(path) {
    std::string error;
    model_ = rt::Model::load_file(path, &error);
    if (!model_) throw Error(error);
  }

  // A validated view of `x` as `count` samples of input_size() floats.
  struct Input {
    const float* data = nullptr;
    std::size_t count = 0;
    bool single = false;
  };

  // The samples in `x`: one sample shaped (input_size,), (C, H, W) or, for one channel,
  // (H, W); or a batch of them with a leading N, (N, input_size) included. Reads `x` in place when
  // it is C-contiguous float32; copies it into `scratch` otherwise.
  Input input(const py::array& x, std::vector<float>& scratch) const {
    const py::dtype dt = x.dtype();
    const bool f32 = dt.kind() == 'f' && dt.itemsize() == 4;
    const bool u8 = dt.kind() == 'u' && dt.itemsize() == 1;
    if (!f32 && !u8)
      throw py::type_error("input dtype " + std::string(py::str(py::handle(dt))) +
                           ": the model takes float32 values (or uint8 pixels, which go through "
                           "the model's byte transform)");
    Input in;
    const py::ssize_t nd = x.ndim();
    const auto tail_is_sample = [&](py::ssize_t from) {
      const py::ssize_t n = nd - from;
      const auto dim = [&](py::ssize_t i) { return static_cast<std::size_t>(x.shape(from + i)); };
      if (n == 1) return dim(0) == model_->input_size();
      if (n == 2)
        return model_->input_c() == 1 && dim(0) == model_->input_h() && dim(1) == model_->input_w();
      if (n == 3)
        return dim(0) == model_->input_c() && dim(1) == model_->input_h() &&
               dim(2) == model_->input_w();
      return false;
    };
    // (N, input_size) is a batch even when N is 1 (scikit-learn's layout for features).
    if (nd == 2 && static_cast<std::size_t>(x.shape(1)) == model_->input_size()) {
      in.count = static_cast<std::size_t>(x.shape(0));
    } else if (nd >= 1 && tail_is_sample(0)) {
      in.single = true;
      in.count = 1;
    } else if (nd >= 2 && tail_is_sample(1)) {
      in.count = static_cast<std::size_t>(x.shape(0));
    } else {
      throw py::value_error("input shape " + shape_text(x) + ": the model takes " +
                            std::to_string(model_->input_size()) + " values per sample, as (" +
                            std::to_string(model_->input_size()) + ",) or (" +
                            std::to_string(model_->input_c()) + ", " +
                            std::to_string(model_->input_h()) + ", " +
                            std::to_string(model_->input_w()) + "), or a batch (N, ...) of them");
    }
    const std::size_t total = in.count * model_->input_size();
    const bool contiguous = (x.flags() & py::array::c_style) != 0;
    if (f32 && contiguous && dt.byteorder() != '>' &&
        reinterpret_cast<std::uintptr_t>(x.data()) % alignof(float) == 0) {
      in.data = static_cast<const float*>(x.data());
      return in;
    }
    scratch.resize(total);
    if (u8) {
      auto bytes = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(x);
      const std::uint8_t* b = bytes.data();
      const float scale = model_->byte_scale(), offset = model_->byte_offset();
      for (std::size_t i = 0; i < total; ++i) scratch[i] = b[i] * scale + offset;
    } else {
      auto floats = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(x);
      std::copy_n(floats.data(), total, scratch.data());
    }
    in.data = scratch.data();
    return in;
  }

  py::object predict(const py::array& x) {
    std::vector<float> scratch;
    const Input in = input(x, scratch);
    const std::size_t n = model_->input_size();
    if (in.single) {
      int c;
      {
        py::gil_scoped_release unlocked;
        std::lock_guard lock(mutex_);
        c = model_->predict(in.data, n);
      }
      return py::int_(c);
    }
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(in.count));
    std::int64_t* o = out.mutable_data();
    {
      py::gil_scoped_release unlocked;
      std::lock_guard lock(mutex_);
      for (std::size_t i = 0; i < in.count; ++i) o[i] = model_->predict(in.data + i * n, n);
    }
    return out;
  }

  py::array_t<float> run(const py::array& x) {
    std::vector<float> scratch;
    const Input in = input(x, scratch);
    const std::size_t n = model_->input_size(), k = model_->output_size();
    std::vector<py::ssize_t> shape;
    if (!in.single) shape.push_back(static_cast<py::ssize_t>(in.count));
    shape.push_back(static_cast<py::ssize_t>(k));
    py::array_t<float> out(shape);
    float* o = out.mutable_data();
    rt::RunStatus status = rt::RunStatus::ok;
    {
      py::gil_scoped_release unlocked;
      std::lock_guard lock(mutex_);
      for (std::size_t i = 0; i < in.count && status == rt::RunStatus::ok; ++i)
        status = model_->run(in.data + i * n, n, o + i * k, k);
    }
    if (status != rt::RunStatus::ok) throw Error(path_ + ": " + rt::run_status_message(status));
    return out;
  }

  // Latency of one inference, timed call by call in C++ like verdant-edge run: batch 1, this
  // thread. `x` is one sample (zeros when None).
  py::dict latency(const py::object& x, std::size_t runs, std::size_t warmup) {
    if (runs == 0) throw SettingError("runs", "runs must be >= 1");
    std::vector<float> sample(model_->input_size(), 0.f);
    if (!x.is_none()) {
      std::vector<float> scratch;
      const Input in = input(x.cast<py::array>(), scratch);
      std::copy_n(in.data, sample.size(), sample.begin());
    }
    std::vector<double> us(runs);
    {
      py::gil_scoped_release unlocked;
      std::lock_guard lock(mutex_);
      for (std::size_t i = 0; i < warmup; ++i) model_->predict(sample.data(), sample.size());
      for (auto& t : us) {
        const auto t0 = std::chrono::steady_clock::now();
        model_->predict(sample.data(), sample.size());
        t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count();
      }
    }
    double mean = 0;
    for (double t : us) mean += t / static_cast<double>(runs);
    std::sort(us.begin(), us.end());
    const auto at = [&](double q) { return us[static_cast<std::size_t>(q * (runs - 1))]; };
    py::dict d;
    d["runs"] = runs;
    d["median_us"] = at(0.5);
    d["mean_us"] = mean;
    d["p99_us"] = at(0.99);
    d["min_us"] = us.front();
    d["kernels"] = model_->isa();
    return d;
  }

  // Mean seconds per predict() of one sample over `calls` back-to-back calls, the whole loop
  // timed once: the C++ cost that Model.predict's per-call overhead is measured against.
  double cpp_predict_seconds(const py::array& x, std::size_t calls) {
    std::vector<float> scratch;
    const Input in = input(x, scratch);
    const std::size_t n = model_->input_size();
    py::gil_scoped_release unlocked;
    std::lock_guard lock(mutex_);
    volatile int sink = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < calls; ++i) sink = model_->predict(in.data, n);
    (void)sink;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
           static_cast<double>(std::max<std::size_t>(calls, 1));
  }

  py::dict info() const {
    py::dict d;
    d["path"] = path_;
    d["name"] = std::string(model_->name());
    d["input_shape"] = py::make_tuple(model_->input_c(), model_->input_h(), model_->input_w());
    d["input_size"] = model_->input_size();
    d["output_size"] = model_->output_size();
    d["file_bytes"] = model_->file_size();
    d["kernels"] = model_->isa();
    d["macs"] = model_->macs();
    d["byte_scale"] = model_->byte_scale();
    d["byte_offset"] = model_->byte_offset();
    py::list layers;
    for (std::size_t i = 0; i < model_->num_layers(); ++i) {
      const auto& l = model_->layer(i);
      py::dict r;
      r["kind"] = vdm::layer_kind_name(l.kind);
      r["encoding"] = vdm::encoding_name(l.encoding);
      r["input"] = py::make_tuple(l.in_c, l.in_h, l.in_w);
      r["output"] = py::make_tuple(l.out_c, l.out_h, l.out_w);
      r["relu"] = l.activation == vdm::Activation::relu;
      r["pool"] = l.pool == vdm::Pool::max ? "max" : l.pool == vdm::Pool::avg ? "avg" : "none";
      r["densified"] = model_->densified(i);
      layers.append(r);
    }
    d["layers"] = layers;
    return d;
  }

  std::size_t input_size() const { return model_->input_size(); }
  std::size_t output_size() const { return model_->output_size(); }
  py::tuple input_shape() const {
    return py::make_tuple(model_->input_c(), model_->input_h(), model_->input_w());
  }

 private:
  std::string path_;
  std::unique_ptr<rt::Model> model_;
  std::mutex mutex_;
};

}  // namespace

void bind_edge(py::module_& m) {
  py::class_<EdgeModel>(m, "EdgeModel", "runtime::Model: a loaded .vdm edge model")
      .def(py::init<const std::string&>(), py::arg("path"),
           py::call_guard<py::gil_scoped_release>())
      .def("predict", &EdgeModel::predict, py::arg("x"))
      .def("run", &EdgeModel::run, py::arg("x"))
      .def("latency", &EdgeModel::latency, py::arg("x") = py::none(), py::arg("runs") = 1000,
           py::arg("warmup") = 10)
      .def("cpp_predict_seconds", &EdgeModel::cpp_predict_seconds, py::arg("x"), py::arg("calls"))
      .def("info", &EdgeModel::info)
      .def_property_readonly("input_size", &EdgeModel::input_size)
      .def_property_readonly("output_size", &EdgeModel::output_size)
      .def_property_readonly("input_shape", &EdgeModel::input_shape);
}

}  // namespace verdant::python
