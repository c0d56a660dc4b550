// PUCT for play: a port of l4demons/search/puct.py (virtual loss, first-play
// urgency, batches of leaves per network call, best move so far at any moment).
#pragma once

#include <vector>

#include "tree.hpp"

namespace l4d {

struct PuctParams {
    double c_puct = 1.75;
    double fpu_reduction = 0.3;
    int batch_size = 16;
    double policy_temp = 1.0;
};

class PuctSearch {
   public:
    // ``keys``: the game's history of position keys, the root's last. ``allowed`` (may be
    // empty: no restriction) limits the root to those moves.
    PuctSearch(const Board& root, std::vector<uint64_t> keys, const PuctParams& params, std::vector<Move> allowed);
    // Writes up to ``want`` leaves (the root alone on the first call); returns how many.
    int collect(BatchOut& out, int want);
    void deliver(BatchIn& in);
    // Tree reuse: continues ``old``'s tree below the node ``path`` leads to from its root, as this
    // search's root (whose history must be the old root's plus ``path``). Only on a fresh, unrestricted
    // search, when that node is expanded, the old search has no leaves waiting for the network and no
    // move mates at once (a fresh search finds that at its root); returns whether it did.
    bool reuse(const PuctSearch& old, const std::vector<Move>& path);

    bool started() const { return !tree_.nodes.empty() && tree_.nodes[0].state == EXPANDED; }
    bool done() const { return done_; }
    int nodes() const { return nodes_; }
    int max_depth() const { return max_depth_; }
    int visits() const { return started() ? tree_.nodes[0].total : 0; }
    const Tree& tree() const { return tree_; }

    // Best move so far: most visited, ties broken by Q, then prior, then the later move.
    int action() const;
    void policy(std::vector<double>& out) const;
    double value() const;
    std::vector<Move> principal_variation(int max_len) const;

   private:
    bool descend(BatchOut& out, bool& collided);
    // A mate at once from the root: each mating move visited once (a won end), and the search is done.
    bool visit_mates();
    int select(int node) const;

    Tree tree_;
    Board root_;
    std::vector<uint64_t> keys_;
    PuctParams params_;
    std::vector<Move> allowed_;
    int nodes_ = 0;
    int max_depth_ = 0;
    bool done_ = false;
    std::vector<Step> steps_;
    std::vector<PendingLeaf> pending_;
};

}  // namespace l4d
