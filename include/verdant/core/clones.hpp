#pragma once
// The attribute that adds an AVX2 + FMA build of a hot loop beside the baseline x86-64 one; the
// loader picks one for the CPU it runs on. Sanitized builds keep the one plain build.
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define VERDANT_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VERDANT_CLONES
#endif
