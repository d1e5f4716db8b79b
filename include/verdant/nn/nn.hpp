#pragma once
// Convenience umbrella for the engine's public API (still small: no third-party headers).
#include "verdant/autograd/generator.hpp"
#include "verdant/autograd/ops.hpp"
#include "verdant/autograd/variable.hpp"
#include "verdant/nn/init.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/nn/module.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/nn/schedule.hpp"
