/**
 * Which local members are in which room. Knows nothing of sockets: a member is any object.
 * Empty rooms are dropped at once, so the registry only holds what is in use.
 */
export class RoomRegistry<M> {
  private readonly rooms = new Map<string, Set<M>>();

  /** Adds a member; returns false if it was already in the room. */
  join(room: string, member: M): boolean {
    let members = this.rooms.get(room);
    if (!members) {
      members = new Set();
      this.rooms.set(room, members);
    }
    if (members.has(member)) return false;
    members.add(member);
    return true;
  }

  /** Removes a member; returns false if it was not in the room. */
  leave(room: string, member: M): boolean {
    const members = this.rooms.get(room);
    if (!members || !members.delete(member)) return false;
    if (members.size === 0) this.rooms.delete(room);
    return true;
  }

  /** The members of a room (empty if none). Do not change the set you are given. */
  members(room: string): ReadonlySet<M> {
    return this.rooms.get(room) ?? EMPTY;
  }

  has(room: string, member: M): boolean {
    return this.rooms.get(room)?.has(member) ?? false;
  }

  /** Number of rooms with at least one local member. */
  get size(): number {
    return this.rooms.size;
  }
}

const EMPTY: ReadonlySet<never> = new Set<never>();
