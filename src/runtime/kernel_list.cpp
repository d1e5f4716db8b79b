// The kernel tables this build has, best first and the reference last (oneDNN's
// cpu_inner_product_list.cpp habit), and the choice among them. A new ISA adds its folder
// (kernels, table, CPU check), then names the table in kernel_tables.hpp, here and in
// CMakeLists.txt (verdant_runtime_kernel_table).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernel_tables.hpp"

namespace verdant::runtime {
namespace {

constexpr const KernelTable* kCompiledTables[] = {
#if defined(VERDANT_RUNTIME_HAVE_AVX512_VNNI)
    &kAvx512VnniKernels,
#endif
#if defined(VERDANT_RUNTIME_HAVE_AVX2)
    &kAvx2Kernels,
#endif
    &kReferenceKernels,
};

}  // namespace

std::span<const KernelTable* const> compiled_kernel_tables() {
  return kCompiledTables;
}

std::span<const KernelTable* const> supported_kernel_tables() {
  static const std::vector<const KernelTable*> supported = [] {
    std::vector<const KernelTable*> tables;
    for (const KernelTable* t : kCompiledTables)
      if (t->cpu_supports()) tables.push_back(t);
    return tables;
  }();
  return supported;
}

const KernelTable* find_kernels(std::string_view isa) {
  for (const KernelTable* t : supported_kernel_tables())
    if (isa == t->isa) return t;
  return nullptr;
}

const KernelTable& choose_kernels(const char* requested, bool* unknown) {
  const KernelTable& best = *supported_kernel_tables().front();
  *unknown = false;
  if (requested == nullptr || *requested == '\0') return best;
  if (const KernelTable* t = find_kernels(requested)) return *t;
  *unknown = true;
  return best;
}

const KernelTable& active_kernels() {
  static const KernelTable& chosen = []() -> const KernelTable& {
    const char* requested = std::getenv("VERDANT_RUNTIME_ISA");
    bool unknown = false;
    const KernelTable& t = choose_kernels(requested, &unknown);
    if (unknown) {
      char names[256] = "";
      for (const KernelTable* s : supported_kernel_tables()) {
        const std::size_t used = std::strlen(names);
        std::snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", s->isa);
      }
      std::fprintf(stderr,
                   "verdant runtime: VERDANT_RUNTIME_ISA=%s is not a kernel table this build "
                   "and CPU support (%s); using %s\n",
                   requested, names, t.isa);
    }
    return t;
  }();
  return chosen;
}

}  // namespace verdant::runtime
