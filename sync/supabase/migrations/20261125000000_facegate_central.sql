-- Facegate central store: the schema doors sync with.
--
-- Apply to a Supabase project with `supabase db push` (copy this folder into supabase/migrations)
-- or paste it into the SQL editor. It relies only on what every Supabase project has: the roles
-- anon, authenticated and service_role, and auth.users / auth.uid().
--
-- Replication: every replicated row (schedules, persons, faces) carries change_no, assigned from
-- one sequence by a trigger on insert and update. A door pulls "everything after N". Writers of
-- replicated rows take one transaction-scoped advisory lock before drawing a number, so change
-- numbers become visible in order: without it a reader could see 11 committed while 10 is still
-- in flight, move its cursor past 10 and never see it. Deletes become tombstones (a trigger turns
-- DELETE into deleted = true), so they reach every door; a tombstoned face loses its embedding.
--
-- Devices: each door is an Auth user bound to one row of devices. Doors talk only through the RPC
-- functions at the end; Row Level Security on every table limits a door to its own site's people,
-- faces and schedules and to writing its own events and heartbeat. anon gets nothing.

create table public.sites (
    id uuid primary key default gen_random_uuid(),
    name text not null unique check (length(name) between 1 and 200),
    created_at timestamptz not null default now()
);

create table public.devices (
    id uuid primary key default gen_random_uuid(),
    site_id uuid not null references public.sites (id),
    name text not null check (length(name) between 1 and 200),
    auth_user_id uuid unique references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    unique (site_id, name)
);

create sequence public.change_seq;

create table public.schedules (
    id uuid primary key default gen_random_uuid(),
    site_id uuid not null references public.sites (id),
    name text not null check (length(name) between 1 and 200),
    windows jsonb not null default '[]' check (jsonb_typeof(windows) = 'array'),
    deleted boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    change_no bigint not null default 0
);
create index schedules_change_no on public.schedules (change_no);
create index schedules_site on public.schedules (site_id);

create table public.persons (
    id uuid primary key default gen_random_uuid(),
    name text not null default '' check (length(name) <= 200),
    external_id text check (length(external_id) between 1 and 200),
    active boolean not null default true,
    valid_from timestamptz,
    valid_until timestamptz,
    schedule_id uuid references public.schedules (id),
    notes text,
    deleted boolean not null default false,
    updated_by uuid,                         -- the device that last pushed it; null = an admin
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    change_no bigint not null default 0
);
create unique index persons_external_id on public.persons (external_id)
    where not deleted and external_id is not null;
create index persons_change_no on public.persons (change_no);

-- Which sites a person may enter. A door sees a person only through a row here for its site;
-- revoking access is deleted = true, so the revocation still reaches the door.
create table public.person_sites (
    person_id uuid not null references public.persons (id),
    site_id uuid not null references public.sites (id),
    deleted boolean not null default false,
    updated_at timestamptz not null default now(),
    primary key (person_id, site_id)
);
create index person_sites_site on public.person_sites (site_id, person_id);

-- Embeddings only (never photos), with the model that made them.
create table public.faces (
    id uuid primary key default gen_random_uuid(),
    person_id uuid not null references public.persons (id),
    embedding real[] check (
        embedding is null or (array_ndims(embedding) = 1 and array_length(embedding, 1) = 128)
    ),
    model text not null check (length(model) between 1 and 100),
    quality real,
    deleted boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    change_no bigint not null default 0,
    check (deleted or embedding is not null)
);
create index faces_person on public.faces (person_id);
create index faces_change_no on public.faces (change_no);

-- The entry log. The id is made on the door, so a retried push never duplicates.
create table public.access_events (
    id uuid primary key,
    device_id uuid not null references public.devices (id),
    site_id uuid not null references public.sites (id),
    ts timestamptz not null,
    door text not null check (length(door) between 1 and 200),
    kind text not null check (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
    person_id uuid,
    person_name text,
    distance real check (distance is null or (distance >= 0 and distance <= 10)),
    reason text,
    track_id integer,
    details jsonb,
    received_at timestamptz not null default now()
);
create index access_events_device_ts on public.access_events (device_id, ts);
create index access_events_site_ts on public.access_events (site_id, ts);

-- The latest heartbeat of each door.
create table public.device_heartbeats (
    device_id uuid primary key references public.devices (id),
    site_id uuid not null references public.sites (id),
    ts timestamptz not null default now(),
    status jsonb not null default '{}'
);

-- --- change numbers and tombstones ----------------------------------------------------------

create function public.facegate_stamp_change() returns trigger
language plpgsql set search_path = '' as $$
begin
    -- One writer of replicated rows at a time until commit: numbers become visible in order.
    perform pg_advisory_xact_lock(7305521001);
    new.change_no := nextval('public.change_seq');
    new.updated_at := now();
    if tg_table_name = 'faces' and new.deleted then
        new.embedding := null;               -- a deleted face keeps no biometric data
    elsif tg_table_name = 'persons' and new.deleted then
        new.name := '';
        new.external_id := null;
        new.notes := null;
        new.active := false;
    end if;
    return new;
end $$;

create trigger schedules_change before insert or update on public.schedules
    for each row execute function public.facegate_stamp_change();
create trigger persons_change before insert or update on public.persons
    for each row execute function public.facegate_stamp_change();
create trigger faces_change before insert or update on public.faces
    for each row execute function public.facegate_stamp_change();

-- A person's faces always carry higher change numbers than the person, so a door never receives
-- a face before its person. A deleted person takes its faces with it.
create function public.facegate_person_changed() returns trigger
language plpgsql set search_path = '' as $$
begin
    if new.deleted then
        update public.faces set deleted = true where person_id = new.id;
    else
        update public.faces set updated_at = now() where person_id = new.id;
    end if;
    return null;
end $$;

create trigger persons_touch_faces after update on public.persons
    for each row execute function public.facegate_person_changed();

-- Granting or revoking a site's access re-sends the person (and so its faces) to that site.
create function public.facegate_access_changed() returns trigger
language plpgsql set search_path = '' as $$
begin
    update public.persons set updated_at = now()
    where id = coalesce(new.person_id, old.person_id);
    return null;
end $$;

create trigger person_sites_touch after insert or update on public.person_sites
    for each row execute function public.facegate_access_changed();

create function public.facegate_tombstone() returns trigger
language plpgsql set search_path = '' as $$
begin
    execute format('update %I.%I set deleted = true where id = $1', tg_table_schema, tg_table_name)
        using old.id;
    return null;                             -- the row stays, as a tombstone
end $$;

create function public.facegate_tombstone_access() returns trigger
language plpgsql set search_path = '' as $$
begin
    update public.person_sites set deleted = true
     where person_id = old.person_id and site_id = old.site_id;
    return null;
end $$;

create trigger schedules_tombstone before delete on public.schedules
    for each row execute function public.facegate_tombstone();
create trigger persons_tombstone before delete on public.persons
    for each row execute function public.facegate_tombstone();
create trigger faces_tombstone before delete on public.faces
    for each row execute function public.facegate_tombstone();
create trigger person_sites_tombstone before delete on public.person_sites
    for each row execute function public.facegate_tombstone_access();

-- --- who is calling -------------------------------------------------------------------------

create function public.facegate_my_device_id() returns uuid
language sql stable security definer set search_path = '' as $$
    select d.id from public.devices d where d.auth_user_id = auth.uid()
$$;

create function public.facegate_my_site() returns uuid
language sql stable security definer set search_path = '' as $$
    select d.site_id from public.devices d where d.auth_user_id = auth.uid()
$$;

-- --- Row Level Security ---------------------------------------------------------------------

alter table public.sites enable row level security;
alter table public.devices enable row level security;
alter table public.schedules enable row level security;
alter table public.persons enable row level security;
alter table public.person_sites enable row level security;
alter table public.faces enable row level security;
alter table public.access_events enable row level security;
alter table public.device_heartbeats enable row level security;

create policy door_reads_own_site on public.sites for select to authenticated
    using (id = (select public.facegate_my_site()));
create policy door_reads_itself on public.devices for select to authenticated
    using (auth_user_id = (select auth.uid()));
create policy door_reads_site_schedules on public.schedules for select to authenticated
    using (site_id = (select public.facegate_my_site()));
create policy door_reads_site_access on public.person_sites for select to authenticated
    using (site_id = (select public.facegate_my_site()));
create policy door_reads_site_persons on public.persons for select to authenticated
    using (exists (select 1 from public.person_sites ps
                   where ps.person_id = persons.id
                     and ps.site_id = (select public.facegate_my_site())));
create policy door_reads_site_faces on public.faces for select to authenticated
    using (exists (select 1 from public.person_sites ps
                   where ps.person_id = faces.person_id
                     and ps.site_id = (select public.facegate_my_site())));
create policy door_writes_own_events on public.access_events for insert to authenticated
    with check (device_id = (select public.facegate_my_device_id())
                and site_id = (select public.facegate_my_site()));
create policy door_reads_own_events on public.access_events for select to authenticated
    using (device_id = (select public.facegate_my_device_id()));
create policy door_writes_own_heartbeat on public.device_heartbeats for insert to authenticated
    with check (device_id = (select public.facegate_my_device_id()));
create policy door_updates_own_heartbeat on public.device_heartbeats for update to authenticated
    using (device_id = (select public.facegate_my_device_id()))
    with check (device_id = (select public.facegate_my_device_id()));
create policy door_reads_own_heartbeat on public.device_heartbeats for select to authenticated
    using (device_id = (select public.facegate_my_device_id()));

-- Supabase grants everything in public to anon and authenticated by default: take it back.
revoke all on table public.sites, public.devices, public.schedules, public.persons,
    public.person_sites, public.faces, public.access_events, public.device_heartbeats
    from anon, authenticated, public;
revoke all on sequence public.change_seq from anon, authenticated, public;
grant select on table public.sites, public.devices, public.schedules, public.persons,
    public.person_sites, public.faces to authenticated;
grant select, insert on table public.access_events to authenticated;
grant select, insert, update on table public.device_heartbeats to authenticated;
grant all on table public.sites, public.devices, public.schedules, public.persons,
    public.person_sites, public.faces, public.access_events, public.device_heartbeats
    to service_role;
grant usage, select on sequence public.change_seq to service_role;
