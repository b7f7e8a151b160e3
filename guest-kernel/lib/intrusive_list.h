// Doubly linked intrusive list: elements embed a ListNode, so insertion and removal never
// allocate (usable with interrupts off and inside the allocator). Not thread-safe by itself.
#pragma once

#include <stddef.h>

namespace hvkvm::guest {

struct ListNode {
    ListNode* previous = nullptr;
    ListNode* next = nullptr;
    bool linked() const { return next != nullptr; }
};

template <typename T, ListNode T::*Link>
class IntrusiveList {
public:
    IntrusiveList() { head_.previous = head_.next = &head_; }
    IntrusiveList(const IntrusiveList&) = delete;
    IntrusiveList& operator=(const IntrusiveList&) = delete;

    bool empty() const { return head_.next == &head_; }
    size_t size() const { return size_; }

    void push_back(T& item) { insert_before(&head_, item); }
    void push_front(T& item) { insert_before(head_.next, item); }
    // Inserts before `position` (an element of this list).
    void insert_before(T& position, T& item) { insert_before(&(position.*Link), item); }

    T* front() const { return empty() ? nullptr : owner(head_.next); }
    T* next_of(const T& item) const {
        const ListNode* node = (item.*Link).next;
        return node == &head_ ? nullptr : owner(node);
    }

    T* pop_front() {
        T* item = front();
        if (item) remove(*item);
        return item;
    }

    void remove(T& item) {
        ListNode& node = item.*Link;
        node.previous->next = node.next;
        node.next->previous = node.previous;
        node.previous = node.next = nullptr;
        --size_;
    }

private:
    void insert_before(ListNode* position, T& item) {
        ListNode& node = item.*Link;
        node.next = position;
        node.previous = position->previous;
        position->previous->next = &node;
        position->previous = &node;
        ++size_;
    }

    static T* owner(const ListNode* node) {
        // Offset of the member within T, computed from a null-based member pointer application.
        const size_t offset = reinterpret_cast<size_t>(&(static_cast<T*>(nullptr)->*Link));
        return reinterpret_cast<T*>(reinterpret_cast<char*>(const_cast<ListNode*>(node)) - offset);
    }

    ListNode head_;
    size_t size_ = 0;
};

}  // namespace hvkvm::guest
