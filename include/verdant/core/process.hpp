#pragma once
// Facts about this process that run reports include.

namespace verdant {

// Peak resident set size of this process so far, in MiB.
double peak_rss_mib();

}  // namespace verdant
