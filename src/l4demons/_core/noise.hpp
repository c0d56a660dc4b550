// The random numbers of self-play: SplitMix64, written identically in Python
// (l4demons/search/noise.py), so the compiled and the reference searches draw
// the same uniforms and Gumbels for the same seed and can be compared move by move.
#pragma once

#include <cmath>
#include <cstdint>

namespace l4d {

inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

class SplitMix64 {
   public:
    explicit SplitMix64(uint64_t seed = 0) : state_(seed) {}
    uint64_t next() {
        state_ += 0x9E3779B97F4A7C15ULL;
        return mix64(state_);
    }
    // Uniform in [0, 1): 53 random bits.
    double uniform() { return double(next() >> 11) * 0x1p-53; }
    // Standard Gumbel: -log(-log(u)), u in (0, 1) strictly (52 bits and a half step).
    double gumbel() {
        double u = (double(next() >> 12) + 0.5) * 0x1p-52;
        return -std::log(-std::log(u));
    }

   private:
    uint64_t state_;
};

// The stream of game number ``index`` of a self-play run seeded with ``seed``.
inline uint64_t game_seed(uint64_t seed, uint64_t index) { return mix64(seed ^ mix64(index + 0x632BE59BD9B4E019ULL)); }

}  // namespace l4d
