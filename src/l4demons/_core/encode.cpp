// Records, planes and policy indices; see encode.hpp.
#include "encode.hpp"

#include <cstring>

namespace l4d {

namespace {

int16_t policy_table[64][64][5];  // [from][to][promo: 0 none/queen, 2 knight, 3 bishop, 4 rook], side-to-move frame

}  // namespace

void init_policy_table() {
    static const int queen_dirs[8][2] = {{0, 1}, {1, 1}, {1, 0}, {1, -1}, {0, -1}, {-1, -1}, {-1, 0}, {-1, 1}};
    static const int knight_deltas[8][2] = {{1, 2}, {2, 1}, {2, -1}, {1, -2}, {-1, -2}, {-2, -1}, {-2, 1}, {-1, 2}};
    static const int underpromotions[3] = {KNIGHT, BISHOP, ROOK};
    for (auto& a : policy_table)
        for (auto& b : a)
            for (auto& c : b) c = -1;
    for (int frm = 0; frm < 64; ++frm) {
        const int f0 = file_of(frm), r0 = rank_of(frm);
        for (int d = 0; d < 8; ++d)
            for (int dist = 1; dist < 8; ++dist) {
                const int f = f0 + queen_dirs[d][0] * dist, r = r0 + queen_dirs[d][1] * dist;
                if (f >= 0 && f < 8 && r >= 0 && r < 8) policy_table[frm][r * 8 + f][0] = int16_t(frm * 73 + d * 7 + dist - 1);
            }
        for (int k = 0; k < 8; ++k) {
            const int f = f0 + knight_deltas[k][0], r = r0 + knight_deltas[k][1];
            if (f >= 0 && f < 8 && r >= 0 && r < 8) policy_table[frm][r * 8 + f][0] = int16_t(frm * 73 + 56 + k);
        }
        if (r0 == 6)
            for (int k = 0; k < 3; ++k) {
                const int f = f0 + k - 1;
                if (f < 0 || f >= 8) continue;
                for (int p = 0; p < 3; ++p)
                    policy_table[frm][56 + f][underpromotions[p]] = int16_t(frm * 73 + 64 + k * 3 + p);
            }
    }
}

int policy_index(Move m, int turn) {
    const int flip = turn == WHITE ? 0 : 56;
    const int promo = move_promo(m) == QUEEN ? 0 : move_promo(m);
    return policy_table[move_from(m) ^ flip][move_to(m) ^ flip][promo];
}

Record encode_record(const Board& b, bool repetition) {
    Record r;
    const int us = b.turn, them = us ^ 1;
    for (int i = 0; i < 6; ++i) {
        Bitboard own = b.pieces[PAWN + i] & b.colors[us], opp = b.pieces[PAWN + i] & b.colors[them];
        if (us == BLACK) {
            own = flip_vertical(own);
            opp = flip_vertical(opp);
        }
        r.pieces[i] = own;
        r.pieces[6 + i] = opp;
    }
    r.ep = int8_t(b.ep < 0 ? -1 : b.ep ^ (us == WHITE ? 0 : 56));
    const uint8_t own_k = us == WHITE ? CASTLE_WK : CASTLE_BK, own_q = us == WHITE ? CASTLE_WQ : CASTLE_BQ;
    const uint8_t opp_k = us == WHITE ? CASTLE_BK : CASTLE_WK, opp_q = us == WHITE ? CASTLE_BQ : CASTLE_WQ;
    r.flags = uint8_t((repetition ? 1 : 0) | ((b.castling & own_k) ? 2 : 0) | ((b.castling & own_q) ? 4 : 0) |
                      ((b.castling & opp_k) ? 8 : 0) | ((b.castling & opp_q) ? 16 : 0));
    r.rule50 = uint8_t(b.halfmove > 255 ? 255 : b.halfmove);
    return r;
}

void write_planes(const Record& r, float* out) {
    std::memset(out, 0, sizeof(float) * 14 * 64);
    for (int p = 0; p < 12; ++p)
        for (Bitboard s = r.pieces[p]; s; s &= s - 1) out[p * 64 + lsb(s)] = 1.0f;
    if (r.ep >= 0) out[12 * 64 + r.ep] = 1.0f;
    const float constant[6] = {float((r.flags >> 1) & 1), float((r.flags >> 2) & 1), float((r.flags >> 3) & 1),
                               float((r.flags >> 4) & 1), float(r.rule50) / 100.0f, 1.0f};
    if (r.flags & 1)
        for (int i = 0; i < 64; ++i) out[13 * 64 + i] = 1.0f;
    for (int k = 0; k < 6; ++k) {
        float* plane = out + (14 + k) * 64;
        for (int i = 0; i < 64; ++i) plane[i] = constant[k];
    }
}

}  // namespace l4d
