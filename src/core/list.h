/*
 * Intrusive doubly-linked lists: a pn_link embedded in each element, a
 * pn_list as the head. Unlinking is O(1) and safe on an element that is
 * in no list, which is what the hand-written unlinks each re-did.
 *
 *   struct item { pn_link link; ... };
 *   pn_list_push(&list, &it->link);
 *   for (pn_link *l = list.head, *next; l; l = next) {
 *       next = l->next;                       // l may be unlinked here
 *       struct item *it = PN_CONTAINER(l, struct item, link);
 *   }
 */
#ifndef PN_LIST_H
#define PN_LIST_H

#include <stddef.h>

#define PN_CONTAINER(ptr, type, field) ((type *)(void *)((char *)(ptr)-offsetof(type, field)))

typedef struct pn_link {
    struct pn_link *prev, *next;
    int linked;
} pn_link;

typedef struct pn_list {
    pn_link *head, *tail;
    size_t len;
} pn_list;

static inline int pn_list_empty(const pn_list *q) {
    return q->head == NULL;
}

/* Appends l at the tail. l must not be in a list. */
static inline void pn_list_push(pn_list *q, pn_link *l) {
    l->next = NULL;
    l->prev = q->tail;
    if (q->tail)
        q->tail->next = l;
    else
        q->head = l;
    q->tail = l;
    l->linked = 1;
    q->len++;
}

/* Inserts l at the head. l must not be in a list. */
static inline void pn_list_push_front(pn_list *q, pn_link *l) {
    l->prev = NULL;
    l->next = q->head;
    if (q->head)
        q->head->prev = l;
    else
        q->tail = l;
    q->head = l;
    l->linked = 1;
    q->len++;
}

/* Inserts l right after at (at NULL: at the head). */
static inline void pn_list_insert_after(pn_list *q, pn_link *at, pn_link *l) {
    if (!at) {
        pn_list_push_front(q, l);
        return;
    }
    l->prev = at;
    l->next = at->next;
    if (at->next)
        at->next->prev = l;
    else
        q->tail = l;
    at->next = l;
    l->linked = 1;
    q->len++;
}

/* Removes l from q; nothing when l is in no list. */
static inline void pn_list_remove(pn_list *q, pn_link *l) {
    if (!l->linked) return;
    if (l->prev)
        l->prev->next = l->next;
    else
        q->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        q->tail = l->prev;
    l->prev = l->next = NULL;
    l->linked = 0;
    q->len--;
}

/* Removes and returns the head, or NULL. */
static inline pn_link *pn_list_shift(pn_list *q) {
    pn_link *l = q->head;
    if (l) pn_list_remove(q, l);
    return l;
}

/*
 * Singly-linked chains (hash buckets): elements of any type with a `next`
 * member, a head pointer per chain. Macros, so one definition serves every
 * element type; pp is a pointer to a link (&head or &element->next).
 *
 *   pn_peer **pp;
 *   PN_CHAIN_SEEK(pp, h->peers[b], *pp == p);
 *   if (*pp) PN_CHAIN_UNLINK(pp);
 */
/* Puts el at the front of the chain whose head is the lvalue head. */
#define PN_CHAIN_PUSH(head, el) ((el)->next = (head), (head) = (el))
/* Leaves pp at the link to the first element for which match (an
 * expression of *pp) holds, or at the chain's end (*pp NULL). */
#define PN_CHAIN_SEEK(pp, head, match)                                                             \
    for ((pp) = &(head); *(pp) && !(match); (pp) = &(*(pp))->next)
/* Unlinks the element *pp points at (save it first: pp then holds its
 * successor). */
#define PN_CHAIN_UNLINK(pp) (*(pp) = (*(pp))->next)

#endif
