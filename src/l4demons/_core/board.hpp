// The board: bitboards, copy-make, legal move generation and the game-end rules.
//
// Everything mirrors python-chess (standard chess, no Chess960), which stays the
// reference the tests compare against:
// - legal moves come out in python-chess's generation order, so move lists,
//   policy-index lists and every tie broken by "first best move" agree;
// - the en passant square is kept only when an en passant capture is legal
//   (python-chess's ``has_legal_en_passant``), which is what the repetition key
//   and the input planes look at;
// - castling rights are kept raw, as python-chess's ``castling_rights`` at the
//   four corners (the input planes show them), and cleaned (king and rook at
//   home) for move generation and the repetition key.
// A position's Zobrist key covers exactly what python-chess's transposition key
// compares, so repetitions are found by comparing keys.
#pragma once

#include <cstdint>
#include <string>

#include "bitboard.hpp"

namespace l4d {

// A move: from | to << 6 | promotion piece type << 12 (0: none). Castling is the
// king's two-square move, as python-chess writes it.
using Move = uint16_t;
constexpr int MAX_MOVES = 256;

inline Move make_move(int from, int to, int promo = 0) { return Move(from | (to << 6) | (promo << 12)); }
inline int move_from(Move m) { return m & 63; }
inline int move_to(Move m) { return (m >> 6) & 63; }
inline int move_promo(Move m) { return m >> 12; }
std::string move_uci(Move m);

// Raw castling bits (corners): white h1, white a1, black h8, black a8.
enum Castling : uint8_t { CASTLE_WK = 1, CASTLE_WQ = 2, CASTLE_BK = 4, CASTLE_BQ = 8 };

struct Board {
    Bitboard pieces[7] = {};  // by piece type (index 0 unused)
    Bitboard colors[2] = {};
    uint8_t piece_on[64] = {};  // piece type on each square, 0 when empty
    uint8_t turn = WHITE;
    uint8_t castling = 0;  // raw rights (Castling bits)
    int8_t ep = -1;        // en passant target square, only when a capture there is legal
    uint16_t halfmove = 0;
    uint32_t fullmove = 1;
    uint64_t key = 0;  // Zobrist key of what python-chess's transposition key compares

    static Board start();
    // From python-chess's fields: bitboards by type (pawns..kings), by colour, the side to
    // move, its castling_rights bitboard, its ep_square (-1: none), halfmove and fullmove.
    // Returns false (board unusable) when the position lacks a king of either colour.
    static bool from_fields(Board& out, const uint64_t type_bb[6], const uint64_t color_bb[2], int turn,
                            uint64_t castling_rights, int ep_square, int halfmove, int fullmove);

    Bitboard occupied() const { return colors[0] | colors[1]; }
    int king_square(int color) const { return lsb(pieces[KING] & colors[color]); }
    Bitboard attackers(int by, int sq, Bitboard occ) const;
    bool in_check() const { return attackers(turn ^ 1, king_square(turn), occupied()) != 0; }
    int ply() const { return 2 * (int(fullmove) - 1) + (turn == BLACK); }

    // Legal moves in python-chess's order; returns how many (at most MAX_MOVES).
    int legal_moves(Move* out) const;
    // Plays a legal move in place (copy the board first to keep the old one).
    void play(Move m);

    uint8_t clean_castling() const;
    bool insufficient_material() const;
    bool has_insufficient_material(int color) const;
    int material_balance() const;  // White's material minus Black's, in pawns (1/3/3/5/9)
    uint64_t compute_key() const;  // from scratch (tests check the incremental key)

   private:
    void put(int color, int pt, int sq);
    void remove(int color, int pt, int sq);
    bool ep_capture_is_legal(int from, int ep_sq) const;
    int legal_ep_square(int candidate) const;  // candidate if some capture there is legal, else -1
    Bitboard slider_blockers(int ksq) const;
    void gen_pseudo(Move* out, int& n, Bitboard from_mask, Bitboard to_mask, Bitboard blockers, int ksq,
                    bool castling_too) const;
    void gen_castling(Move* out, int& n, int ksq) const;
};

uint64_t perft(const Board& b, int depth);

}  // namespace l4d
