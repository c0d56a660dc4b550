// Game-end rules over a game's history of position keys, as python-chess and
// l4demons (selfplay.game_over, search/tree.terminal_value) apply them.
#pragma once

#include <cstdint>
#include <vector>

#include "board.hpp"

namespace l4d {

// How many earlier positions (same side to move) equal the last one, counting
// up to ``enough``. Only the last ``halfmove`` plies can hold a repetition: a
// capture or pawn move in between makes every earlier position differ.
inline int earlier_occurrences(const std::vector<uint64_t>& keys, int halfmove, int enough) {
    const int n = int(keys.size());
    const int reach = halfmove < n - 1 ? halfmove : n - 1;
    const uint64_t current = keys[n - 1];
    int found = 0;
    for (int back = 2; back <= reach; back += 2)
        if (keys[n - 1 - back] == current && ++found >= enough) break;
    return found;
}

// encode_position's repetition bit: python-chess's is_repetition(2).
inline bool repeated_once(const Board& b, const std::vector<uint64_t>& keys) {
    return b.halfmove >= 4 && earlier_occurrences(keys, b.halfmove, 1) >= 1;
}

// search/tree.py terminal_value: the value for the side to move if the game is over
// here, inside a search (a single repetition is a draw) or not (threefold).
inline bool terminal_value(const Board& b, int n_moves, const std::vector<uint64_t>& keys, bool in_search,
                           double& value) {
    if (n_moves == 0) {
        value = b.in_check() ? -1.0 : 0.0;
        return true;
    }
    value = 0.0;
    if (b.halfmove >= 100 || b.insufficient_material()) return true;
    const int need = in_search ? 1 : 2;
    return b.halfmove >= 4 && earlier_occurrences(keys, b.halfmove, need) >= need;
}

// Whether ``m`` (legal in ``b``) checkmates: search/tree.py mating_moves.
inline bool gives_mate(const Board& b, Move m) {
    Board after = b;
    after.play(m);
    if (!after.in_check()) return false;
    Move replies[MAX_MOVES];
    return after.legal_moves(replies) == 0;
}

// search/tree.py search_end_value: terminal_value inside a search, where a position whose side to
// move can mate at once is also a won end (+1), so the network is not asked there and the move
// that allows it is seen as lost one ply earlier.
inline bool search_end_value(const Board& b, const Move* moves, int n, const std::vector<uint64_t>& keys,
                             double& value) {
    if (terminal_value(b, n, keys, true, value)) return true;
    for (int i = 0; i < n; ++i)
        if (gives_mate(b, moves[i])) {
            value = 1.0;
            return true;
        }
    return false;
}

enum Termination : int { NOT_OVER = 0, CHECKMATE, STALEMATE, INSUFFICIENT, FIFTY_MOVES, REPETITION };

// selfplay.game_over: why the rules end the game here (NOT_OVER if they do not), and
// the result for White (1, 0, -1).
inline Termination game_over(const Board& b, const std::vector<uint64_t>& keys, int& white_result) {
    Move moves[MAX_MOVES];
    white_result = 0;
    if (b.legal_moves(moves) == 0) {
        if (b.in_check()) {
            white_result = b.turn == WHITE ? -1 : 1;
            return CHECKMATE;
        }
        return STALEMATE;
    }
    if (b.insufficient_material()) return INSUFFICIENT;
    if (b.halfmove >= 100) return FIFTY_MOVES;
    if (b.halfmove >= 8 && earlier_occurrences(keys, b.halfmove, 2) >= 2) return REPETITION;
    return NOT_OVER;
}

}  // namespace l4d
