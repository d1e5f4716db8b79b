#pragma once
// The parts of verdant._native, one per bound module; module.cpp calls them in order.
#include <pybind11/pybind11.h>

#include <chrono>

namespace verdant::python {

namespace py = pybind11;

// VerdantError and the translation of verdant's exceptions (see errors.cpp).
void bind_errors(py::module_& m);
// energy::Tracker, its results, the sinks.
void bind_energy(py::module_& m);
// plan_schedule / plan_json, intensity lookups, the carbon-aware pause controller.
void bind_schedule(py::module_& m);
// runtime::Model (the edge runtime).
void bind_edge(py::module_& m);

// Seconds since the Unix epoch, as Python's time.time() counts them.
double unix_seconds(std::chrono::system_clock::time_point t);

}  // namespace verdant::python
