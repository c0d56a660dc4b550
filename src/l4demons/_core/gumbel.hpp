// Gumbel AlphaZero for self-play: a port of l4demons/search/gumbel.py (see its
// docstring for the method). Same rounds, same completed-Q targets, same
// tie-breaking, so for the same network outputs and the same Gumbel noise both
// choose the same move and produce the same policy target (up to the last bits
// of float64 sums).
#pragma once

#include <utility>
#include <vector>

#include "noise.hpp"
#include "tree.hpp"

namespace l4d {

struct GumbelParams {
    int max_considered = 16;
    double c_visit = 50.0;
    double c_scale = 0.1;
    double gumbel_scale = 1.0;
};

// Rounds of sequential halving as (visit level, actions this round); gumbel.halving_schedule.
std::vector<std::pair<int, int>> halving_schedule(int m, int n);

class GumbelSearch {
   public:
    // Starts a search of ``root``; ``keys`` is the game's history of position keys, the
    // root's last (the search pushes and pops on it). ``noise`` draws the root's Gumbels.
    void start(const Board& root, std::vector<uint64_t>* keys, int simulations, const GumbelParams& params,
               SplitMix64* noise);
    // Writes the leaves this search wants evaluated now; 0 means it is done.
    int collect(BatchOut& out);
    // Reads the answers for the leaves of the last collect, in order.
    void deliver(BatchIn& in);
    bool done() const { return done_; }

    // The result, once done.
    int action();
    void policy(std::vector<double>& out);
    double value();
    int nodes() const { return nodes_; }
    const Tree& tree() const { return tree_; }
    const Record& root_record() const { return root_record_; }

   private:
    bool simulate(int action, BatchOut& out);
    int make_leaf(const Board& b, BatchOut& out, bool& is_leaf);
    int select_interior(int node);
    void completed_sigma(int node, std::vector<double>& sigma);
    double mixed_value(int node);

    Tree tree_;
    Board root_;
    std::vector<uint64_t>* keys_ = nullptr;
    GumbelParams params_;
    SplitMix64* noise_ = nullptr;
    int simulations_ = 0;
    int nodes_ = 0;
    bool root_started_ = false;
    bool mate_at_once_ = false;  // the root has mating moves: considered_ holds them
    bool done_ = false;
    Record root_record_{};
    std::vector<double> gumbel_;
    std::vector<int> considered_;
    std::vector<std::pair<int, int>> rounds_;
    size_t next_round_ = 0;
    std::vector<Step> steps_;
    std::vector<PendingLeaf> pending_;
    std::vector<double> sigma_, scratch_, scratch2_;
    std::vector<int> pool_;
};

}  // namespace l4d
